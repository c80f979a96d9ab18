"""Stop a run whose training loss becomes NaN or infinite, before anything from it is saved.

On the CPU the check is free and immediate: the failing step raises before its backward pass, so no weight
takes the bad update. On a GPU an immediate check would make the host wait for the device every step, so each
step only records a device-side flag and the flags are read together every ``interval`` steps
(``trainer.log_every_n_steps``, when Lightning writes the step's logs anyway) and at the end of every epoch:
one read per interval, and the run still stops before validation could score the broken weights as "best" or
any checkpoint could be written (both happen after the epoch-end read). The error names the first bad step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from transferlab.errors import TrainingDivergedError

Where = Callable[[], str]


class FiniteLossGuard:
    """Per-run guard: :meth:`check` every training step, :meth:`flush` at the end of every epoch.

    Args:
        interval: Deferred flags are read after this many steps (and at every :meth:`flush`).
        defer: Record flags instead of reading them at once, whatever the device (GPU tensors always defer).
    """

    def __init__(self, interval: int = 10, defer: bool = False) -> None:
        self.interval = max(1, int(interval))
        self.defer = defer
        self._pending: list[tuple[torch.Tensor, Where]] = []

    def check(self, loss: torch.Tensor, where: Where) -> None:
        """Raise for a non-finite ``loss`` (CPU: now; else at the next read of the flags).

        Args:
            loss: The step's scalar loss.
            where: Describes the step for the error message (called only when it is raised).
        """
        finite = torch.isfinite(loss.detach())
        if loss.device.type == "cpu" and not self.defer:
            if not bool(finite):
                self._raise(float(loss.detach()), where)
            return
        self._pending.append((finite, where))
        if len(self._pending) >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Read the flags the deferred steps left (one host-device sync; a no-op when there are none)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        flags = torch.stack([finite for finite, _ in pending])
        if not bool(flags.all()):
            first = int((~flags).nonzero()[0, 0])
            self._raise(float("nan"), pending[first][1])

    @staticmethod
    def _raise(value: float, where: Where) -> None:
        shown = "NaN or infinite" if value != value else repr(value)
        raise TrainingDivergedError(
            f"training loss became {shown} at {where()}; the run stopped before saving anything from this "
            "step (no checkpoint, no best weights, no export). Fix: lower the stage's learning rates "
            "(strategy.stages.<stage>.lr_head / lr_backbone), clip gradients (trainer.gradient_clip_val=1.0), "
            "use trainer.precision=32-true if mixed precision overflows, or check the data for NaN values."
        )
