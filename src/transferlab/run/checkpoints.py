"""Exact resume: the per-step ``last.ckpt`` and where a killed run picks up.

Every epoch (or, with ``callbacks.checkpoint.last_min_interval_s``, every so many seconds and always at a
step's last epoch) ends with ``checkpoints/<step>/last.ckpt``, written atomically by Lightning (a temp file,
then renamed). Besides weights, optimizer, scheduler and loop state it holds the run's
:class:`~transferlab.run.state.RunState` (the recorder's callback state: history, stage rows, the stage's best
weights, the TensorBoard offset, random states). Shuffling depends only on (seed, epoch).

``transferlab resume RUN_DIR`` re-runs the job in the same dir: :func:`find_resume_point` picks the newest
*readable* ``last.ckpt`` of the plan (a truncated or foreign newest file falls back to the previous step's),
the engine skips the steps before it, continues that step with ``Trainer.fit(ckpt_path=...)`` and redoes what
follows deterministically, so the finished run equals an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Checkpoint

from transferlab.errors import ResumeError
from transferlab.run.recorder import STATE_KEY
from transferlab.run.state import RunState
from transferlab.rundir.layout import LAST_CHECKPOINT, last_checkpoint
from transferlab.strategies.plan import Plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumePoint:
    """Where a run continues: the plan step (index into ``plan.steps``), its checkpoint and the saved state."""

    step_index: int
    checkpoint: Path
    state: dict[str, Any]


def read_resume_state(path: Path) -> dict[str, Any]:
    """The run state saved in a ``last.ckpt``.

    Raises:
        ValueError: When the file cannot be read (truncated, not a checkpoint) or holds no run state of this
            version (the reason is the message).
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, a pickle weights_only refuses, an empty file
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise ValueError(f"unreadable ({type(err).__name__}: {detail})") from err
    state = checkpoint.get("callbacks", {}).get(STATE_KEY) if isinstance(checkpoint, dict) else None
    if state is None:
        raise ValueError("holds no transferlab run state (written by another program or an older version)")
    RunState.from_dict(state)  # raises ValueError for another format
    return state


def find_resume_point(run_dir: Path, plan: Plan) -> ResumePoint:
    """The newest readable checkpoint in plan order (the latest step whose ``last.ckpt`` loads).

    Raises:
        ResumeError: When the run dir holds no checkpoint to resume from, or none that can be read.
    """
    bad: list[str] = []
    for index in range(len(plan.steps) - 1, -1, -1):
        path = last_checkpoint(run_dir, plan.steps[index].label)
        if not path.is_file():
            continue
        try:
            state = read_resume_state(path)
        except ValueError as err:
            log.warning("resume: %s cannot be used (%s); trying the previous step's checkpoint", path, err)
            bad.append(f"{path} ({err})")
            continue
        return ResumePoint(index, path, state)
    if bad:
        raise ResumeError(
            f"resume: no usable checkpoint in {run_dir}: {'; '.join(bad)}. Fix: start the run again without "
            "resume in a new dir (the files here stay as they are), or restore the file from a backup."
        )
    raise ResumeError(
        f"resume: {run_dir} holds no checkpoints/<step>/{LAST_CHECKPOINT} to resume from (the run stopped before "
        "its first epoch ended, or ran with callbacks=none / callbacks.checkpoint.save_last=false). Fix: start "
        "it again without resume, or keep checkpoints on (callbacks=default) in runs you may need to resume."
    )


class LastCheckpoint(Checkpoint):
    """Write ``<dir>/last.ckpt`` at epoch ends: the state a killed run resumes from.

    A ``Checkpoint`` subclass on purpose: Lightning runs checkpoint callbacks' ``on_train_epoch_end`` after
    the module's own (and after the :class:`~transferlab.run.recorder.RunRecorder`, placed before this one), so
    the file holds the finished epoch's record. (Lightning's ``ModelCheckpoint`` writes ``last.ckpt`` only in
    epochs that also saved a top-k checkpoint.) Writes are atomic (temp file, rename).

    A write costs more than a short epoch (the model, the stage's best weights and the optimizer state: tens
    of MB, against ~25 ms for an epoch on cached features), so after a write the next one waits until
    ``min_interval_s`` seconds of training have passed; the step's last epoch — and an epoch after which the
    run stops (early stopping, SIGINT/SIGTERM) — is always written. Resuming from an earlier epoch of a step
    replays the epochs after it exactly (shuffling and random states depend on the checkpoint), so the
    interval changes how much is redone, never the result.

    Args:
        dirpath: The plan step's checkpoint dir.
        min_interval_s: Least seconds between two writes (0: every epoch).
    """

    def __init__(self, dirpath: Path, min_interval_s: float = 0.0) -> None:
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s={min_interval_s}: must be ≥ 0")
        self.path = Path(dirpath) / LAST_CHECKPOINT
        self.min_interval_s = float(min_interval_s)
        self._since = time.monotonic()
        self.written_epoch: int | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the interval at the step's first epoch."""
        self._since = time.monotonic()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Save the whole training state of the epoch that just ended (if the interval has passed)."""
        if trainer.sanity_checking:
            return
        last = trainer.should_stop or trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if last or time.monotonic() - self._since >= self.min_interval_s:
            trainer.save_checkpoint(self.path)
            self._since = time.monotonic()
            self.written_epoch = trainer.current_epoch
