"""Stop a run whose training loss becomes NaN or infinite, within a step and before anything is saved.

On the CPU the check is free and immediate: the failing step raises before its backward pass, so no weight
takes the bad update. On a GPU an immediate check would make the host wait for the device every step, so the
step records a device-side flag and the next step (or the epoch end) reads it: the run still stops one step
later, before validation could score the broken weights as "best" or any checkpoint could be written.
"""

from __future__ import annotations

import torch

from transferlab.errors import TrainingDivergedError


class FiniteLossGuard:
    """Per-run guard: :meth:`check` every training step, :meth:`flush` at the end of every epoch."""

    def __init__(self) -> None:
        self._pending: torch.Tensor | None = None
        self._where = ""

    def check(self, loss: torch.Tensor, where: str) -> None:
        """Raise for a non-finite ``loss`` (CPU: now; GPU: when the next step or the epoch end reads it)."""
        self.flush()
        finite = torch.isfinite(loss.detach())
        if loss.device.type == "cpu":
            self._raise_unless(bool(finite), float(loss.detach()), where)
        else:
            self._pending, self._where = finite, where

    def flush(self) -> None:
        """Read the flag a GPU step left (a no-op on the CPU)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._raise_unless(bool(pending), float("nan"), self._where)

    @staticmethod
    def _raise_unless(ok: bool, value: float, where: str) -> None:
        if not ok:
            shown = "NaN or infinite" if value != value else repr(value)
            raise TrainingDivergedError(
                f"training loss became {shown} at {where}; the run stopped before saving anything from this "
                "step (no checkpoint, no best weights, no export). Fix: lower the stage's learning rates "
                "(strategy.stages.<stage>.lr_head / lr_backbone), clip gradients (trainer.gradient_clip_val=1.0), "
                "use trainer.precision=32-true if mixed precision overflows, or check the data for NaN values."
            )
