"""Shared helpers of the benchmarks: timing callbacks, the machine line, tables and result lines.

Run every benchmark from the repository root as a module (``python -m benchmarks.throughput``) so that the
callbacks below can be named in configs (``+callbacks.extra.timer._target_=benchmarks.common.EpochTimer``).
"""

from __future__ import annotations

import logging
import os
import platform
import re
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch


def sync() -> None:
    """Wait for queued GPU work (no-op on CPU), so that a timestamp covers the work issued before it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class EpochTimer(pl.Callback):
    """``time.perf_counter`` at the start and end of every training epoch, and the images of each epoch.

    The engine builds one instance per plan step from the config
    (``+callbacks.extra.timer._target_=benchmarks.common.EpochTimer``); each registers itself in
    :attr:`instances`, so a benchmark that calls ``engine.run`` in its own process reads them afterwards.

    An epoch is timed from its ``on_train_epoch_start`` to the next epoch's ``on_train_epoch_start`` (the last
    one: to ``on_train_end``), so it covers the batches, the module's epoch-end hook (metric compute,
    ``self.log``), the logger's epoch-end writes and the scheduler step: all the Trainer does per epoch.

    A benchmark may interleave its baseline with the framework, so both run in the same time window (A, B, A,
    B, …) on a machine whose load changes by the second; the baseline's time is not counted in the epoch:

    * :attr:`between_epochs` is called after an epoch's end stamp and before the next start stamp (and once
      after the last epoch);
    * :attr:`between_steps` is called at every ``on_train_batch_end``; the time it takes is subtracted from
      the epoch (use it on CPUs only: on a GPU the wait for queued work would stall the framework's pipeline).
    """

    instances: ClassVar[list[EpochTimer]] = []
    between_epochs: ClassVar[Callable[[], None] | None] = None
    between_steps: ClassVar[Callable[[], None] | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.images: list[int] = []
        self.excluded: list[float] = []
        EpochTimer.instances.append(self)

    def _close_epoch(self) -> None:
        if len(self.ends) < len(self.starts):
            sync()
            self.ends.append(time.perf_counter())
            if EpochTimer.between_epochs is not None:
                EpochTimer.between_epochs()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Close the previous epoch (run :attr:`between_epochs`), then stamp this epoch's start."""
        self._close_epoch()
        self.images.append(0)
        self.excluded.append(0.0)
        sync()
        self.starts.append(time.perf_counter())

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Count the images of the batch (a shape read); run :attr:`between_steps` off the clock."""
        self.images[-1] += int(batch[1].shape[0])
        if EpochTimer.between_steps is not None:
            start = time.perf_counter()
            EpochTimer.between_steps()
            self.excluded[-1] += time.perf_counter() - start

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Close the last epoch (and run :attr:`between_epochs` once more)."""
        self._close_epoch()

    def epochs(self) -> list[tuple[float, int]]:
        """``(seconds, images)`` of every finished epoch, the baseline's interleaved time left out."""
        return [
            (end - start - excluded, n)
            for start, end, excluded, n in zip(self.starts, self.ends, self.excluded, self.images, strict=False)
        ]

    @classmethod
    def take(cls) -> list[EpochTimer]:
        """The instances created since the last call (and forget them)."""
        out, cls.instances = cls.instances, []
        return out


class FirstBatchStamp(pl.Callback):
    """Write ``time.time()`` to ``path`` at the first training batch; optionally end the process there.

    Used by ``benchmarks/startup.py`` in a ``transferlab train`` subprocess:
    ``+callbacks.extra.first._target_=benchmarks.common.FirstBatchStamp +callbacks.extra.first.path=...``.

    Args:
        path: File that receives the wall-clock time (seconds since the epoch, as text).
        exit_after: End the process (status 0) right after writing: the rest of the run is not startup.
    """

    def __init__(self, path: str, exit_after: bool = True) -> None:
        super().__init__()
        self.path = path
        self.exit_after = exit_after
        self.done = False

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        """Record the first batch (and exit if asked)."""
        if self.done:
            return
        now = time.time()
        self.done = True
        Path(self.path).write_text(f"{now:.6f}\n")
        if self.exit_after:
            os._exit(0)


@dataclass
class Samples:
    """Repeated measurements of one variant (e.g. images/s per epoch)."""

    name: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median of the values (NaN when empty)."""
        return statistics.median(self.values) if self.values else float("nan")

    def spread(self) -> str:
        """``min–max`` of the values, for the table."""
        return f"{min(self.values):.4g}–{max(self.values):.4g}" if self.values else "-"


THREADS_HELP = (
    "torch intra-op threads on the CPU (default 1; 0 = torch's default, one per core). One thread keeps timings "
    "stable on a shared machine: with one per core, a core taken by another process stalls every parallel op"
)


def set_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` on a CPU-only machine when ``threads > 0`` (GPU runs keep torch's)."""
    if threads > 0 and not torch.cuda.is_available():
        torch.set_num_threads(threads)


def cpu_model() -> str:
    """The CPU model from ``/proc/cpuinfo`` (or ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    """One line naming the machine: CPU model, cores, torch threads, torch/lightning versions, GPU if any."""
    import lightning

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    malloc = [f"{k}={os.environ[k]}" for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_") if k in os.environ]
    return (
        f"machine: cpu={cpu_model()!r} cores={cores} torch_threads={torch.get_num_threads()} "
        f"torch={torch.__version__} lightning={lightning.__version__} python={platform.python_version()} gpu={gpu}"
        + (f" malloc: {' '.join(malloc)}" if malloc else "")
    )


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with right-aligned columns (the first column left-aligned)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def result_line(name: str, ratio: float, target: str) -> str:
    """The final line every benchmark prints: ``RESULT <name> <ratio> (target <t>)``."""
    return f"RESULT {name} {ratio:.3f} (target {target})"


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Lightning's banners and known warnings while a benchmark runs the engine in-process."""
    names = ("lightning.pytorch", "lightning.fabric", "transferlab")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for n, level in levels.items():
                logging.getLogger(n).setLevel(level)


class LogCapture(logging.Handler):
    """Keeps the formatted messages of one logger (at INFO) while installed; see :func:`capture_log`."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the message."""
        self.messages.append(record.getMessage())

    def find(self, pattern: str) -> list[re.Match[str]]:
        """Matches of ``pattern`` (``re.search``) over the kept messages."""
        return [m for m in (re.search(pattern, msg) for msg in self.messages) if m]


@contextmanager
def capture_log(name: str) -> Iterator[LogCapture]:
    """Capture INFO messages of logger ``name`` (not propagated to the console meanwhile)."""
    logger = logging.getLogger(name)
    handler = LogCapture()
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` (NaN when the denominator is 0)."""
    return numerator / denominator if denominator else float("nan")
