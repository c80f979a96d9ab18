"""The engine: one run, top to bottom — parse, assemble, fit each plan step, carry weights, test, write outputs.

Everything the run records lives in one :class:`~transferlab.run.state.RunState`, held by the
:class:`~transferlab.run.recorder.RunRecorder` callback and saved with every checkpoint; the module trains,
the engine loops over the plan's steps and writes the record out at the end (``run/outputs.py``).
"""

from __future__ import annotations

import logging
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from transferlab.data.base import TransferDataModule
from transferlab.errors import ResumeError, RunInterrupted
from transferlab.run.assembly import RunParts, assemble
from transferlab.run.callbacks import early_stop, last_checkpoint_callback, step_callbacks
from transferlab.run.checkpoints import ResumePoint, find_resume_point
from transferlab.run.distributed import (
    check_ranks_in_sync,
    is_rank_zero,
    is_script_launched_ddp,
    use_job_command_for_ranks,
)
from transferlab.run.ema import keep_better
from transferlab.run.evaluate import validation_metrics
from transferlab.run.feature_cache import FeatureCache, cache_blocker, cached_loaders
from transferlab.run.head_init import ridge_head
from transferlab.run.lr_auto import find_stage_lr, with_found_rates
from transferlab.run.outputs import stage_row, write_outputs
from transferlab.run.recorder import RunRecorder
from transferlab.run.selection import carried, consider, finish
from transferlab.run.spec import RunConfig, parse_config
from transferlab.run.speed import apply_speed_settings, skip_failing_nvml_probe
from transferlab.run.state import RunState
from transferlab.run.stop import StopRequest, signal_name
from transferlab.run.tracking import RunLoggers, build_loggers
from transferlab.run.trainer import build_trainer
from transferlab.rundir.finished import finished_metrics
from transferlab.rundir.layout import CHECKPOINTS_DIR, LAST_CHECKPOINT
from transferlab.rundir.metrics import format_summary
from transferlab.strategies.plan import Plan, StepPlan
from transferlab.strategies.render import format_plan
from transferlab.strategies.spec import StageSpec

log = logging.getLogger(__name__)


def quiet_known_warnings() -> None:
    """Silence the warnings and banners that would repeat for every plan step and say nothing to act on."""
    # Lightning's banners (GPU available, tips, "fit stopped") would repeat for every plan step; the stage
    # progress bar and the end-of-run table say what matters. Its warnings still show.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    # Frozen parts run in eval mode on purpose (their BatchNorm statistics must not move).
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode", category=UserWarning)
    # Few-shot data sets have fewer batches per epoch than the logging interval; epoch metrics still log.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*", category=UserWarning)
    # In-memory data sets need no worker processes.
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*", category=UserWarning)
    # Under DDP: epoch-level values are torchmetrics results (already reduced over ranks) or the same on every
    # rank (learning rates, trainable counts), so Lightning's advice to all-reduce them again does not apply.
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")
    # TransferModule.on_after_batch_transfer (channels-last batches) is meant to apply to every data module.
    warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer` in `LightningModule`.*")
    # Lightning's own use of a torch API deprecated in newer torch releases.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def run(cfg: DictConfig | RunConfig, run_dir: Path, resume: bool | str | None = None) -> dict[str, Any]:
    """Run every stage of the configured strategy and write the run's outputs into ``run_dir``.

    Args:
        cfg: The composed Hydra config, or one already parsed.
        run_dir: Output directory of this run (Hydra's ``runtime.output_dir``).
        resume: ``False``: a fresh run (a dir that holds a finished run is refused); ``True``: continue from
            the newest checkpoint in ``run_dir`` (a finished run is returned as it is); ``"auto"`` (sweep jobs
            run again): finished → returned, checkpoints → continued, else fresh. ``None`` reads ``resume``.

    Returns:
        The content written to ``metrics.json``.

    Raises:
        RunInterrupted: After SIGINT/SIGTERM (the epoch's checkpoint is written first; see ``run/stop.py``).
    """
    start = time.perf_counter()
    quiet_known_warnings()
    skip_failing_nvml_probe()
    config = cfg if isinstance(cfg, RunConfig) else parse_config(cfg)  # every value checked before anything loads
    resume = config.options.resume if resume is None else resume
    finished = finished_metrics(run_dir, config.resolved, resume)
    if finished is not None:
        return finished
    run_dir.mkdir(parents=True, exist_ok=True)
    kwargs = config.trainer.kwargs
    if is_script_launched_ddp(kwargs) and HydraConfig.initialized():
        use_job_command_for_ranks()  # ranks > 0 run this job in this run dir (run/distributed.py)
    pl.seed_everything(config.options.seed, workers=True, verbose=False)
    device = compute_device(kwargs)
    parts = assemble(config, device=device)
    apply_speed_settings(parts.module, config.trainer.speed, on_gpu=device.type == "cuda")
    placed = parts.data.place_on(device) if isinstance(parts.data, TransferDataModule) else None
    if placed:
        log.info("%s", placed)
    log.info("data: %s", parts.data.describe() if hasattr(parts.data, "describe") else type(parts.data).__name__)
    log.info("plan:\n%s", format_plan(parts.plan, parts.module.hparams["backbone_name"]))
    recorder = RunRecorder(RunState(), parts.monitor, parts.monitor_mode)
    point = _resume_point(run_dir, parts.plan, resume)
    loggers = build_loggers(config, run_dir, resumed=point is not None)  # TensorBoard, CSV, MLflow (logger.*)
    if point is not None:
        recorder.load_state_dict(point.state)
        loggers.step_offset = recorder.state.step_offset
        log.info("resume: continuing at step %s from %s", parts.plan.steps[point.step_index].label, point.checkpoint)
    try:
        with StopRequest() as stop:
            last_test = _run_stages(parts, run_dir, recorder, loggers, point, device, stop)
        seconds = time.perf_counter() - start
        metrics = write_outputs(parts, run_dir, recorder.state, last_test, loggers.tensorboard, seconds)
    except BaseException as err:
        loggers.abort(err)  # the MLflow run is marked FAILED or KILLED, not left RUNNING
        raise
    loggers.finish(run_dir, metrics)  # the CSV table flushed; the MLflow run's final metrics and files
    return metrics


def _run_stages(
    parts: RunParts,
    run_dir: Path,
    recorder: RunRecorder,
    loggers: RunLoggers,
    point: ResumePoint | None,
    device: torch.device,
    stop: StopRequest,
) -> dict[str, Any]:
    """Fit every step of every stage (skipping what a resume point already holds); the last test's metrics."""
    config, module, plan, state = parts.config, parts.module, parts.plan, recorder.state
    cache = FeatureCache(config.options.feature_cache.dir)
    trainer: pl.Trainer | None = None
    loaders: dict[str, Any] | None = None
    last_test: dict[str, Any] = {}
    stages = plan.strategy.stages
    for stage_index, stage in enumerate(stages):
        steps = [(i, s) for i, s in enumerate(plan.steps) if s.stage_index == stage_index]
        if point is not None and steps[-1][0] < point.step_index:
            continue  # finished before the kill: its row came back with the checkpoint
        stage_start = time.perf_counter()
        if stage.head_init == "ridge" and (point is None or point.step_index < steps[0][0]):
            state.head_init[stage.name] = ridge_head(parts, stage.name, device)  # a resume inside: in the weights
        if stage.lr_auto:  # lr: auto: a range test on the weights the stage starts from (once per run)
            if stage.name not in state.lr_found:
                state.lr_found[stage.name] = find_stage_lr(parts, stage_index, device)
            parts = with_found_rates(parts, state)
            plan, stage = parts.plan, parts.plan.strategy.stages[stage_index]
            steps = [(i, s) for i, s in enumerate(plan.steps) if s.stage_index == stage_index]
        state.begin_stage(recorder.mode)  # a resumed fit restores the stage's best so far
        for index, step in steps:
            if point is not None and index < point.step_index:
                continue  # its weights and history come back with the resume checkpoint
            _stop_if_requested(stop, run_dir, f"before step {step.label}")
            ckpt_path = point.checkpoint if point is not None and index == point.step_index else None
            loaders = _feature_loaders(parts, cache, step, device)
            module.set_step(step, inputs="images" if loaders is None else "features")
            module.train()  # a test at the end of the previous stage left it in eval mode
            callbacks = step_callbacks(
                config.options.callbacks, step, run_dir, recorder, stop, len(stages),
                bool(config.trainer.kwargs.get("enable_progress_bar", True)),
            )  # fmt: skip
            trainer = build_trainer(config.trainer.kwargs, step.epochs, loggers.for_trainer(), callbacks, str(run_dir))
            state.step_offset = loggers.step_offset
            _fit(trainer, parts, loaders, ckpt_path, stop)
            digests = check_ranks_in_sync(module, step.label)
            if digests is not None:
                state.ddp_sync[step.label] = digests
            loggers.step_offset += trainer.global_step
            if stop.requested:
                raise _interrupted(stop, run_dir, step, trainer, callbacks)
            stopped = early_stop(trainer, step.epochs, callbacks)
            plateau = state.early_stops.get(step.label, {}).get("rule") == "plateau"  # recorded by the recorder
            if stopped is not None or plateau:
                _record_early_stop(state, loggers, stage.name, step.label, stopped or state.early_stops[step.label])
            if plateau:
                break  # the plateau rule ends the stage: its later unfreeze steps do not run
        if trainer is None:  # a strategy has at least one stage with at least one epoch; a resume always fits once
            raise RuntimeError("no plan step ran")
        if stage.carry == "best" and state.best_state is not None:
            module.load_state_dict(state.best_state)
        carry = _carry_average(parts, recorder, stage, trainer, loaders, device)
        is_last = stage_index == len(stages) - 1
        if plan.strategy.final == "best":
            consider(state, stage.name, carry["val"], module, recorder.monitor, recorder.mode, last=is_last)
        last_test = {}
        if config.options.test_each_stage:
            _stop_if_requested(stop, run_dir, f"before the test of stage {stage.name}")
            last_test = _test(trainer, parts, loaders, loggers)
        row = stage_row(state, stage, time.perf_counter() - stage_start, recorder, last_test)
        found = {"lr_found": state.lr_found[stage.name]} if stage.name in state.lr_found else {}
        if stage.name in state.head_init:
            found["head_init"] = state.head_init[stage.name]
        state.stages[stage.name] = row | {"carried": carry} | found
    if trainer is None:
        raise RuntimeError("no plan step ran")
    if plan.strategy.final == "best" and finish(state, module, stages[-1].name):
        chosen = state.selection["stage"]  # type: ignore[index]
        log.info("final model: stage %s (best %s on val across stages, strategy.final=best)", chosen, recorder.monitor)
        last_test = _test(trainer, parts, None, loggers)
    return last_test or _test(trainer, parts, loaders, loggers)


def _carry_average(
    parts: RunParts,
    recorder: RunRecorder,
    stage: StageSpec,
    trainer: pl.Trainer,
    loaders: dict[str, Any] | None,
    device: torch.device,
) -> dict[str, Any]:
    """What the stage carries (``run/selection.py``); with ``ema_decay``, the average instead when it scores better."""
    state, module = recorder.state, parts.module
    carry = carried(state, stage)
    if stage.ema_decay is None or state.ema is None or state.ema.get("stage") != stage.name:
        return carry
    val_loaders = loaders["val"] if loaders is not None else parts.data.val_dataloader()
    ema = keep_better(
        module, state, carry["val"], lambda: validation_metrics(module, val_loaders, device, trainer),
        recorder.monitor, recorder.mode,
    )  # fmt: skip
    carry["ema"] = {"updates": ema["updates"], "decay": stage.ema_decay, "val": ema["val"], "kept": ema["kept"]}
    if ema["kept"]:  # the average as of the stage's last epoch
        carry |= {"weights": "ema", "epoch": state.stage_rows(stage.name)[-1]["epoch"], "val": ema["val"]}
    return carry


def _record_early_stop(state: RunState, loggers: RunLoggers, stage: str, label: str, stopped: dict[str, Any]) -> None:
    """Keep an early stop in the run state (``metrics.json``'s stage row) and say it in the log and the trackers."""
    record = state.early_stops[label] = {**state.early_stops.get(label, {}), "stage": stage, **stopped}
    if record.get("rule") == "plateau":
        text = (
            f"stage {stage} ended after {record['stage_epochs']} of {record['stage_planned']} epochs "
            f"(step {label}): {record['reason']}"
        )
    else:
        epochs = f"{stopped['epochs']} of {stopped['planned']} epochs"
        text = f"step {label} stopped early after {epochs}: {stopped['reason']}"
    log.info("%s", text)
    loggers.early_stop(label, text)


def _fit(
    trainer: pl.Trainer, parts: RunParts, loaders: dict[str, Any] | None, ckpt_path: Path | None, stop: StopRequest
) -> None:
    try:
        if loaders is not None:
            trainer.fit(
                parts.module, train_dataloaders=loaders["train"], val_dataloaders=loaders["val"],
                ckpt_path=ckpt_path, weights_only=True,
            )  # fmt: skip
        else:
            trainer.fit(parts.module, datamodule=parts.data, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:  # Lightning's own SIGTERM handling (where the run's handler was not in place)
        stop.signum = stop.signum or signal.SIGTERM


def _test(trainer: pl.Trainer, parts: RunParts, loaders: dict[str, Any] | None, loggers: RunLoggers) -> dict[str, Any]:
    """Test the module: on cached test features if the step trained on them, else on the data module.

    The test is logged at the step the fit ended on: the run's loggers have already moved their offset past
    this fit's steps, and Lightning logs the test at the fit's last step again.
    """
    module = parts.module
    shift = trainer.global_step
    loggers.step_offset -= shift
    try:
        if module.inputs == "features" and loaders is not None:
            trainer.test(module, dataloaders=loaders["test"], verbose=False)
        else:
            module.use_inputs("images")
            trainer.test(module, datamodule=parts.data, verbose=False)
    finally:
        loggers.step_offset += shift
    module.use_inputs("images")
    return dict(module.epoch_metrics["test"])  # every test ends with on_test_epoch_end, which records it


def _feature_loaders(
    parts: RunParts, cache: FeatureCache, step: StepPlan, device: torch.device
) -> dict[str, Any] | None:
    """Loaders over cached features when the step's backbone is entirely frozen, else ``None`` (live images)."""
    module, data, options = parts.module, parts.data, parts.config.options
    module.set_step(step)  # what trains in this step decides whether its features can be cached
    module.train()
    blocker = cache_blocker(module, data, options.feature_cache.enabled)
    if blocker is not None:
        if not any(p.requires_grad for p in module.backbone.parameters()):  # frozen, yet not cacheable: say why
            log.info("feature cache: step %s computes features live: %s", step.label, blocker)
        return None
    precision = str(parts.config.trainer.kwargs["precision"])
    cached = cache.get(module.backbone, data, parts.config.data, device, precision, is_rank_zero())
    where = cache.path(cached.key) if cached.source != "memory" else "memory"
    log.info(
        "feature cache: step %s trains the head on cached features (%s in %.2f s, %s)",
        step.label, cached.source, cached.seconds, where,
    )  # fmt: skip
    return cached_loaders(cached, data, device)


def _resume_point(run_dir: Path, plan: Plan, resume: bool | str) -> ResumePoint | None:
    """Where to continue (``None``: from the start). ``auto`` continues only where checkpoints exist."""
    if resume is True:
        return find_resume_point(run_dir, plan)
    if resume == "auto":
        try:
            return find_resume_point(run_dir, plan)
        except ResumeError:
            return None
    return None


def compute_device(kwargs: dict[str, Any]) -> torch.device:
    """Where features are computed for the cache: this rank's GPU when training runs on GPUs, else the CPU."""
    if str(kwargs.get("accelerator", "auto")) in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0") or 0))
    return torch.device("cpu")


def _newest_checkpoint(run_dir: Path) -> str:
    found = sorted((run_dir / CHECKPOINTS_DIR).glob(f"*/{LAST_CHECKPOINT}"), key=lambda p: p.stat().st_mtime)
    return f"the newest checkpoint is {found[-1]}" if found else "no checkpoint was written yet"


def _stop_if_requested(stop: StopRequest, run_dir: Path, where: str) -> None:
    if stop.signum is not None:
        raise RunInterrupted(
            stop.signum, f"stopped by {signal_name(stop.signum)} {where}; {_newest_checkpoint(run_dir)}"
        )


def _interrupted(
    stop: StopRequest, run_dir: Path, step: StepPlan, trainer: pl.Trainer, callbacks: list[pl.Callback]
) -> RunInterrupted:
    signum = stop.signum or signal.SIGINT
    epoch = step.first_epoch + trainer.current_epoch
    last = last_checkpoint_callback(callbacks)
    if last is not None and last.written_epoch is not None:
        saved = f"its checkpoint is written ({last.path})"
    elif last is None:
        saved = "no checkpoint is kept (callbacks.checkpoint.save_last=false), so it cannot be resumed"
    else:
        saved = _newest_checkpoint(run_dir)
    return RunInterrupted(
        signum, f"stopped by {signal_name(signum)} after epoch {epoch} of stage {step.stage.name}; {saved}"
    )


def summary(metrics: dict[str, Any]) -> str:
    """The short end-of-run table (see :func:`~transferlab.rundir.metrics.format_summary`)."""
    return format_summary(metrics)
