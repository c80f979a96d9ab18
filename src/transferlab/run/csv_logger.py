"""A CSV logger whose steps run on across the run's many ``Trainer.fit`` calls: one table for the whole run.

Each plan step is its own ``Trainer`` whose global step restarts at 0; the engine moves ``step_offset`` (as for
TensorBoard, ``run/loggers.py``) so the rows of all stages form one table with non-decreasing steps,
``<run dir>/csv/metrics.csv``. The run's hyperparameters go to ``csv/hparams.yaml`` at the end.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from typing_extensions import override

from transferlab.rundir.layout import CSV_DIR


class RunCSVWriter(ExperimentWriter):
    """Lightning's CSV writer that keeps the rows of an earlier attempt of the same run dir (a resume).

    Lightning's writer deletes an existing ``metrics.csv``; a resumed run would lose its finished stages. This
    one keeps those rows and, at its first save, drops only the rows at or past the first step it logs again
    (those the killed attempt logged after its last checkpoint), so the table stays one step sequence.
    """

    def __init__(self, log_dir: str) -> None:
        self._earlier: list[dict[str, str]] | None = None
        super().__init__(log_dir)

    @override
    def _check_log_dir_exists(self) -> None:
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            self._earlier = list(reader)
            self.metrics_keys = sorted(reader.fieldnames or [])

    @override
    def save(self) -> None:
        if self._earlier is not None and self.metrics:
            first = min(int(row["step"]) for row in self.metrics)
            kept = [row for row in self._earlier if _step(row) < first]
            with self._fs.open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(kept)
            self._earlier = None
        super().save()


def _step(row: Mapping[str, str]) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:  # a damaged row: drop it with the rows that are logged again
        return float("inf")


class RunCSVLogger(CSVLogger):
    """``CSVLogger`` with a step offset, writing straight into ``<run dir>/csv`` (no ``version_N`` folders).

    Args:
        save_dir: The run directory.
    """

    def __init__(self, save_dir: str) -> None:
        # every step written at once: a run logs a few hundred rows, and a kill must not lose the buffered ones
        super().__init__(save_dir=save_dir, name=CSV_DIR, version="", flush_logs_every_n_steps=1)
        self.step_offset = 0

    @property
    @override
    def log_dir(self) -> str:
        """``<run dir>/csv``."""
        return self.root_dir

    @property
    @override
    @rank_zero_experiment
    def experiment(self) -> RunCSVWriter:
        """The writer (created on first use, into ``log_dir``)."""
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = RunCSVWriter(log_dir=self.log_dir)
        return self._experiment

    @override
    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:  # type: ignore[override]
        """Log one row at ``step + step_offset``."""
        super().log_metrics(dict(metrics), None if step is None else step + self.step_offset)

    @rank_zero_only
    def log_run_hparams(self, values: Mapping[str, Any]) -> None:
        """Write the run's hyperparameters (the flat columns of ``run/hparams.py``) to ``csv/hparams.yaml``."""
        self.experiment.log_hparams(dict(values))
        self.save()
