"""Exact resume: what a checkpoint must hold beyond Lightning's state, and where a killed run picks up.

Every epoch ends with ``checkpoints/<step>/last.ckpt`` (Lightning writes it atomically: to a temp file, then
renamed), holding besides weights, optimizer, scheduler and loop state a ``transferlab`` entry: the per-epoch
history, the stage's best weights and score, the run's finished stage rows and TensorBoard offset, and the
python / numpy / torch random states. Shuffling depends only on (seed, epoch) (``EpochShuffleSampler``).

``transferlab resume RUN_DIR`` re-runs the job in the same dir with ``resume=true``: the engine restores the
newest ``last.ckpt`` of the plan (the latest step that has one), skips the steps before it, continues that
step with ``Trainer.fit(ckpt_path=...)`` (Lightning restores the epoch and optimizer) and redoes what follows
deterministically (carrying the best weights, the stage test), so the finished run equals an uninterrupted one.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint

from transferlab.errors import ConfigError
from transferlab.strategies.plan import Plan

STATE_KEY = "transferlab"
LAST = "last.ckpt"


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) random states as plain data (safe for ``weights_only`` loads)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass(frozen=True)
class ResumePoint:
    """Where a run continues: the plan step (index into ``plan.steps``) and its newest checkpoint."""

    step_index: int
    checkpoint: Path


def find_resume_point(run_dir: Path, plan: Plan) -> ResumePoint:
    """The newest checkpoint in plan order (the latest step that has a ``last.ckpt``).

    Raises:
        ConfigError: When the run dir holds no checkpoint to resume from.
    """
    for index in range(len(plan.steps) - 1, -1, -1):
        path = run_dir / "checkpoints" / plan.steps[index].label / LAST
        if path.is_file():
            return ResumePoint(index, path)
    raise ConfigError(
        f"resume: {run_dir} holds no checkpoints/<step>/{LAST} to resume from (the run stopped before its first "
        "epoch ended, or ran with callbacks=none / callbacks.checkpoint.save_last=false). Fix: start it again "
        "without resume, or keep checkpoints on (callbacks=default) in runs you may need to resume."
    )


INTERVAL_KEY = "callbacks.checkpoint.last_min_interval_s"


def last_checkpoint_interval(checkpoint_cfg: dict[str, Any]) -> float:
    """The ``callbacks.checkpoint.last_min_interval_s`` setting, checked (0 when absent).

    Raises:
        ConfigError: for a value that is not a number of seconds ≥ 0.
    """
    value = checkpoint_cfg.get("last_min_interval_s", 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(
            f"{INTERVAL_KEY}={value!r}: expected seconds >= 0. Fix: {INTERVAL_KEY}=30 (0 = write last.ckpt every "
            "epoch)."
        )
    return float(value)


class LastCheckpoint(Checkpoint):
    """Write ``<dir>/last.ckpt`` at epoch ends: the state a killed run resumes from.

    A ``Checkpoint`` subclass on purpose: Lightning runs checkpoint callbacks' ``on_train_epoch_end`` after
    the module's own, so the file holds the finished epoch's history. (Lightning's ``ModelCheckpoint`` writes
    ``last.ckpt`` only in epochs that also saved a top-k checkpoint.) Writes are atomic (temp file, rename).

    A write costs more than a short epoch (the model, the stage's best weights and the optimizer state: tens
    of MB, against ~25 ms for an epoch on cached features), so after a write the next one waits until
    ``min_interval_s`` seconds of training have passed; the step's last epoch is always written. Resuming
    from an earlier epoch of a step replays the epochs after it exactly (shuffling and random states depend
    on the checkpoint), so the interval changes how much is redone, never the result.

    Args:
        dirpath: The plan step's checkpoint dir.
        min_interval_s: Least seconds between two writes (0: every epoch).
    """

    def __init__(self, dirpath: Path, min_interval_s: float = 0.0) -> None:
        self.path = Path(dirpath) / LAST
        self.min_interval_s = float(min_interval_s)
        self._since = time.monotonic()

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
