"""A test-only Lightning callback that SIGKILLs its own process at a chosen point of a run.

Active only when ``TRANSFERLAB_TEST_KILL`` is set (so the resumed run, started without it, runs through):
- ``batch:<step>:<epoch>:<batch>`` — after that training batch (mid-epoch);
- ``stage_end:<stage>`` — after the test at the end of that stage (between stages);
- ``ckpt_write:<step>:<epoch>`` — while that epoch's checkpoint file is being written: the write stops half
  way through the bytes (the process dies before the file is complete and before it is renamed into place).
"""

from __future__ import annotations

import os
import signal
from typing import Any

import lightning.pytorch as pl

ENV = "TRANSFERLAB_TEST_KILL"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt(pl.Callback):
    """Kill the process at the point named by ``$TRANSFERLAB_TEST_KILL``."""

    def __init__(self) -> None:
        self.spec = os.environ.get(ENV, "").split(":") if os.environ.get(ENV) else []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int) -> None:
        if self.spec[:1] == ["batch"]:
            step, epoch, batch_idx = self.spec[1], int(self.spec[2]), int(self.spec[3])
            if pl_module.step_plan.label == step and trainer.current_epoch == epoch and idx == batch_idx:
                _die()

    def on_test_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.spec[:1] == ["stage_end"] and pl_module.step_plan.stage.name == self.spec[1]:
            _die()

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        if self.spec[:1] != ["ckpt_write"]:
            return
        if pl_module.step_plan.label != self.spec[1] or trainer.current_epoch != int(self.spec[2]):
            return
        # The checkpoint dict is complete now; the file is written next. Die half way through that write.
        from fsspec.implementations.local import LocalFileOpener

        original = LocalFileOpener.write

        def half_then_die(self: Any, data: Any) -> Any:
            original(self, bytes(data)[: len(data) // 2])
            self.flush()
            _die()

        LocalFileOpener.write = half_then_die  # type: ignore[method-assign]


SLOW_ENV = "TRANSFERLAB_TEST_SLOW"
MARKS_ENV = "TRANSFERLAB_TEST_MARKS"


class Slow(pl.Callback):
    """Pace a run so that a test can signal or kill it from outside inside a chosen step and epoch.

    After every training batch it touches ``$TRANSFERLAB_TEST_MARKS/<step>.<epoch>.<batch>`` (when set) and
    sleeps ``$TRANSFERLAB_TEST_SLOW`` seconds (when set); tiny runs are otherwise over before a signal lands.
    """

    def __init__(self) -> None:
        self.seconds = float(os.environ.get(SLOW_ENV, "0") or 0)
        self.marks = os.environ.get(MARKS_ENV)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int) -> None:
        if self.marks:
            from pathlib import Path

            Path(self.marks, f"{pl_module.step_plan.label}.{trainer.current_epoch}.{idx}").touch()
        if self.seconds:
            import time

            time.sleep(self.seconds)
