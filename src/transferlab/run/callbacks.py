"""The Lightning callbacks of one plan step, and the extra callbacks the config names (``callbacks.extra``).

Per step: the best and last checkpoints, the run recorder, the progress bar and the clean stop on signals.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ModelCheckpoint

from transferlab.config.run import CallbackOptions
from transferlab.errors import ConfigError
from transferlab.run.checkpoints import LastCheckpoint
from transferlab.run.ema import WeightAverage
from transferlab.run.progress import StageProgressBar
from transferlab.run.recorder import RunRecorder
from transferlab.run.stop import StopAtEpochEnd, StopRequest
from transferlab.rundir.layout import BEST_CHECKPOINT_PATTERN, step_checkpoint_dir
from transferlab.strategies.plan import StepPlan


def build_extra_callbacks(extra: Mapping[str, Mapping[str, Any]]) -> list[pl.Callback]:
    """Instantiate ``callbacks.extra`` (name → ``{_target_, ...arguments}``), in config order.

    Raises:
        ConfigError: Naming ``callbacks.extra.<name>`` when the class cannot be imported, is not a Lightning
            callback, or refuses its arguments.
    """
    out: list[pl.Callback] = []
    for name, spec in extra.items():
        key, target = f"callbacks.extra.{name}", str(spec["_target_"])
        try:
            cls = get_class(target)
        except Exception as err:
            raise ConfigError(
                f"{key}._target_={target}: cannot be imported ({' '.join(str(err).split())[:200]}). Fix: name a "
                "Lightning callback class, e.g. lightning.pytorch.callbacks.EarlyStopping."
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, pl.Callback)):
            raise ConfigError(f"{key}._target_={target}: not a Lightning callback class (lightning.pytorch.Callback).")
        try:
            out.append(instantiate(dict(spec), _convert_="all"))
        except (InstantiationException, TypeError, ValueError) as err:
            detail = " ".join(str(err).split())[:300]
            raise ConfigError(f"{key}: {target}(...) refuses its arguments ({detail}). Fix: correct {key}.*.") from None
    return out


def step_callbacks(
    options: CallbackOptions,
    step: StepPlan,
    run_dir: Path,
    recorder: RunRecorder,
    stop: StopRequest,
    num_stages: int,
    progress_bar: bool,
) -> list[pl.Callback]:
    """The callbacks of one ``Trainer.fit``, in the order Lightning runs their epoch-end hooks.

    Checkpoint callbacks run after the module's own epoch-end hook and in list order: the best checkpoint, the
    recorder (completes the epoch's row), then ``last.ckpt`` (writes it). The stop callback sets
    ``should_stop`` before any of them.
    """
    callbacks: list[pl.Callback] = [StopAtEpochEnd(stop)]
    if step.stage.ema_decay is not None:  # before the checkpoints: an average updated this step is in them
        callbacks.append(WeightAverage(recorder.state, step.stage.name, step.stage.ema_decay))
    step_dir = step_checkpoint_dir(run_dir, step.label)
    checkpoint = options.checkpoint
    if checkpoint.save_top_k:
        callbacks.append(
            ModelCheckpoint(
                dirpath=step_dir,
                filename=BEST_CHECKPOINT_PATTERN,
                auto_insert_metric_name=False,
                monitor=recorder.monitor,
                mode=recorder.mode,
                save_top_k=checkpoint.save_top_k,
                save_last=False,  # LastCheckpoint writes last.ckpt
                save_on_train_epoch_end=True,
            )
        )
    callbacks.append(recorder)
    if checkpoint.save_last:
        callbacks.append(LastCheckpoint(step_dir, checkpoint.last_min_interval_s))  # what 'resume' continues from
    if progress_bar:  # refresh_rate 0 keeps a (disabled) bar, so Lightning adds no default one
        callbacks.append(StageProgressBar(num_stages, refresh_rate=options.progress_refresh_rate))
    callbacks += build_extra_callbacks(options.extra)
    return callbacks


def last_checkpoint_callback(callbacks: list[pl.Callback]) -> LastCheckpoint | None:
    """The step's ``LastCheckpoint``, if it writes one."""
    return next((c for c in callbacks if isinstance(c, LastCheckpoint)), None)


def early_stop(trainer: pl.Trainer, planned: int, callbacks: list[pl.Callback]) -> dict[str, Any] | None:
    """How a callback (``EarlyStopping`` in ``callbacks.extra``) ended a fit before its planned epochs, or ``None``.

    Args:
        trainer: The step's Trainer after ``fit`` returned.
        planned: The step's planned epochs.
        callbacks: The step's callbacks (their ``stopping_reason_message`` says why).

    Returns:
        ``{"epochs": run, "planned": planned, "reason": text}`` when fewer epochs ran than planned.
    """
    run = int(trainer.current_epoch)
    if not trainer.should_stop or run >= planned:
        return None
    reasons = [str(m) for c in callbacks if (m := getattr(c, "stopping_reason_message", None))]
    names = [type(c).__name__ for c in callbacks if getattr(c, "stopped_epoch", 0)]
    reason = "; ".join(reasons) or (f"{', '.join(names)} stopped it" if names else "a callback stopped it")
    return {"epochs": run, "planned": planned, "reason": " ".join(reason.split())}
