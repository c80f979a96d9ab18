"""Stopping cleanly on SIGINT (Ctrl-C) and SIGTERM: finish the epoch, write its checkpoint, say how to go on.

The first signal asks the run to stop: the current epoch finishes (with validation), its ``last.ckpt`` is
written whatever ``last_min_interval_s`` says, and the run ends with one line naming ``transferlab resume
<run dir>`` and exit status 130 (SIGINT) or 143 (SIGTERM). A second signal stops at once (the newest
checkpoint on disk stays as it is). Under DDP every rank stops after the same epoch.

SIGTERM is taken over only where nobody else handles it: under submitit (``hydra/launcher=slurm``) its own
handler stays in place, so SLURM preemption and requeue work as before (the requeued job resumes from the
checkpoints). Signals are handled in the main thread only (Python's rule).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

import lightning.pytorch as pl

from transferlab.errors import RunInterrupted

_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


def signal_name(signum: int) -> str:
    """``SIGINT`` / ``SIGTERM`` (or ``signal <n>``)."""
    return _NAMES.get(signum, f"signal {signum}")  # type: ignore[call-overload]


def _is_default(handler: Any) -> bool:
    return handler in (signal.SIG_DFL, None, signal.default_int_handler)


class StopRequest:
    """Catches SIGINT (and SIGTERM where it is free) for the lifetime of a run (``with StopRequest() as stop``).

    Attributes:
        signum: The first signal received, ``None`` before.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    # ---- installing ------------------------------------------------------------------------------------
    def __enter__(self) -> StopRequest:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(signum)
            if signum == signal.SIGTERM and not _is_default(current):
                continue  # submitit's (or another launcher's) SIGTERM handling stays in charge
            self._previous[signum] = current
            signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def reclaim(self) -> None:
        """Put this handler back where a library replaced it (Lightning composes its own SIGTERM handler per fit)."""
        if threading.current_thread() is threading.main_thread():
            for signum in self._previous:
                if signal.getsignal(signum) is not self._handle:
                    signal.signal(signum, self._handle)

    # ---- signals -------------------------------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise RunInterrupted(signum, f"stopped at once by a second {signal_name(signum)}")
        self.signum = signum
        print(
            f"\ntransferlab: {signal_name(signum)} received: stopping after this epoch (its checkpoint is written); "
            f"send it again to stop at once.",
            file=sys.stderr,
            flush=True,
        )

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.signum is not None


class StopAtEpochEnd(pl.Callback):
    """Ends the fit after the epoch in which a stop was requested (on every rank at the same epoch).

    Args:
        stop: The run's stop request.
    """

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Lightning installed its own SIGTERM handler for this fit: take the run's handler back."""
        self.stop.reclaim()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Set ``should_stop`` before the checkpoint callbacks run (they write the epoch when it is set)."""
        requested = self.stop.requested
        if trainer.world_size > 1:  # a collective on every rank, every epoch: one rank's signal stops all
            requested = bool(trainer.strategy.reduce_boolean_decision(requested, all=False))
        if requested:
            if self.stop.signum is None:  # another rank was signalled: this one stops with it
                self.stop.signum = signal.SIGTERM
            trainer.should_stop = True
