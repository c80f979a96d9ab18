"""A TensorBoard logger whose x-axis runs on across the run's many ``Trainer.fit`` calls.

Each plan step is its own ``Trainer`` whose global step restarts at 0; the engine sets ``step_offset`` so all
steps of all stages draw one continuous curve per scalar in one TensorBoard run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from typing_extensions import override

from transferlab.rundir.layout import TENSORBOARD_DIR


class RunTensorBoardLogger(TensorBoardLogger):
    """``TensorBoardLogger`` with a step offset and one event stream for the whole run.

    Args:
        save_dir: The run directory; events go to ``<save_dir>/tensorboard``.
        **kwargs: Passed to ``TensorBoardLogger`` (``default_hp_metric`` is forced off: the run logs its real
            final metrics to the HParams dashboard instead of the ``-1`` placeholder).
    """

    def __init__(self, save_dir: str, **kwargs: Any) -> None:
        kwargs.setdefault("name", TENSORBOARD_DIR)
        kwargs.setdefault("version", "")
        kwargs["default_hp_metric"] = False
        super().__init__(save_dir=save_dir, **kwargs)
        self.step_offset = 0

    @override
    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log scalars at ``step + step_offset``."""
        super().log_metrics(metrics, None if step is None else step + self.step_offset)

    @override
    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Flush only: the next step's Trainer keeps writing to the same event file."""
        if self._experiment is not None:
            self.experiment.flush()

    @rank_zero_only
    def close(self) -> None:
        """Flush and close the event file at the end of the run."""
        if self._experiment is not None:
            self.experiment.flush()
            self.experiment.close()
