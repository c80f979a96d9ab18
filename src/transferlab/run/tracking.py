"""The run's experiment trackers as one: TensorBoard, a CSV table and MLflow, built from ``logger.*``.

A run is many ``Trainer.fit`` calls (one per plan step), each restarting its global step at 0. The engine hands
every step's Trainer the same loggers and moves one :attr:`RunLoggers.step_offset`, which this object passes to
each logger, so every tracker draws all stages on one step axis (and the offset is saved with the run state, so
a resumed run continues the axis). The end of the run (after ``write_outputs``) is here too: the CSV table is
flushed, the MLflow run gets its final metrics and files and ends.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import Logger

from transferlab.config.logger import MLflowOptions
from transferlab.errors import RunInterrupted
from transferlab.run.csv_logger import RunCSVLogger
from transferlab.run.distributed import is_rank_zero
from transferlab.run.hparams import flatten, run_hparams
from transferlab.run.loggers import RunTensorBoardLogger
from transferlab.run.mlflow_logger import RunMLflowLogger, finish_mlflow, open_mlflow_logger
from transferlab.run.spec import RunConfig
from transferlab.run.sweep import run_label

log = logging.getLogger(__name__)


class RunLoggers:
    """The run's loggers (any of them may be off), driven as one.

    Args:
        tensorboard: The TensorBoard logger, or ``None``.
        csv: The CSV logger, or ``None``.
        mlflow: The MLflow logger, or ``None`` (also on ranks > 0 under DDP: rank 0 logs for all).
        mlflow_options: ``logger.mlflow`` (what the end of the run uploads, where it is recorded).
    """

    def __init__(
        self,
        tensorboard: RunTensorBoardLogger | None = None,
        csv: RunCSVLogger | None = None,
        mlflow: RunMLflowLogger | None = None,
        mlflow_options: MLflowOptions | None = None,
    ) -> None:
        self.tensorboard, self.csv, self.mlflow = tensorboard, csv, mlflow
        self.mlflow_options = mlflow_options or MLflowOptions()
        self._offset = 0

    @property
    def active(self) -> list[Logger]:
        """The loggers that are on (TensorBoard first: Lightning takes the first one's ``log_dir``)."""
        return [lg for lg in (self.tensorboard, self.csv, self.mlflow) if lg is not None]

    def for_trainer(self) -> list[Logger] | None:
        """What a step's ``Trainer(logger=...)`` gets (``None``: no logger)."""
        return self.active or None

    @property
    def step_offset(self) -> int:
        """Steps of the plan steps already fitted: where the next fit's step 0 lands on every tracker."""
        return self._offset

    @step_offset.setter
    def step_offset(self, value: int) -> None:
        self._offset = int(value)
        for logger in self.active:
            logger.step_offset = self._offset  # type: ignore[attr-defined]

    def early_stop(self, label: str, text: str) -> None:
        """Say that a plan step stopped early: TensorBoard text at this step, an MLflow tag."""
        if not is_rank_zero():
            return
        if self.tensorboard is not None:
            self.tensorboard.experiment.add_text("early_stop", text, global_step=self._offset)
        if self.mlflow is not None:
            self.mlflow.experiment.set_tag(self.mlflow.run_id, f"early_stop.{label}", text)

    def finish(self, run_dir: Path, metrics: Mapping[str, Any]) -> dict[str, Any] | None:
        """End the run's trackers after ``write_outputs`` (which closed TensorBoard); the MLflow record, if any.

        Args:
            run_dir: The run directory, with its final files written.
            metrics: The content of ``metrics.json``.
        """
        if not is_rank_zero():
            return None
        if self.csv is not None:
            self.csv.finalize("success")
        if self.mlflow is None:
            return None
        try:
            return finish_mlflow(self.mlflow, run_dir, self.mlflow_options, metrics.get("final") or {})
        except Exception as err:  # the run is finished and its files are in the run dir: a tracker must not fail it
            log.warning("MLflow: the end of run %s was not logged (%s)", self.mlflow.run_id, err)
            return None

    def abort(self, err: BaseException) -> None:
        """Keep what a failed or interrupted run logged: flush the table, mark the MLflow run KILLED or FAILED."""
        if not is_rank_zero():
            return
        try:
            if self.csv is not None:
                self.csv.finalize("failed")
            if self.mlflow is not None:
                self.mlflow.end("KILLED" if isinstance(err, (RunInterrupted, KeyboardInterrupt)) else "FAILED")
        except Exception as second:  # the run's own error is what the user must see
            log.warning("logger: could not close the trackers after the run failed: %s", second)


def run_params(config: RunConfig) -> dict[str, Any]:
    """The run's flat hyperparameters: the HParams columns of this job (``run/hparams.py``) and the task group."""
    resolved = config.resolved
    params = run_hparams(resolved, config.options.seed, config.strategy.name)
    task = flatten(resolved.get("task") or {}, "task")
    params.update({k: ("null" if v is None else v) for k, v in task.items() if not isinstance(v, (dict, list))})
    return params


def _mlflow_tags(config: RunConfig, run_dir: Path) -> dict[str, str]:
    options = config.options
    tags = {
        "transferlab.run_dir": str(run_dir.resolve()),
        "transferlab.task_name": options.task_name,
        "transferlab.backbone": config.backbone.name,
        "transferlab.data": str(config.data.get("name")),
        "transferlab.strategy": config.strategy.name,
        "transferlab.seed": str(options.seed),
    }
    if options.tags:
        tags["transferlab.tags"] = ",".join(options.tags)
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        tags["transferlab.sweep_dir"] = str(Path(str(HydraConfig.get().sweep.dir)).resolve())  # filter a sweep
    return tags


def build_loggers(config: RunConfig, run_dir: Path, resumed: bool) -> RunLoggers:
    """The loggers ``logger.*`` switches on, opened before training.

    Args:
        config: The parsed run config.
        run_dir: The run directory.
        resumed: The run continues from a checkpoint (the MLflow run of the earlier attempt is continued).

    Raises:
        ConfigError: When the MLflow store cannot be opened (see :func:`open_mlflow_logger`).
    """
    options = config.options.logger
    tensorboard = RunTensorBoardLogger(str(run_dir)) if options.tensorboard else None
    csv = RunCSVLogger(str(run_dir)) if options.csv else None
    params = run_params(config) if options.csv or options.mlflow.enabled else {}
    if csv is not None:
        csv.log_run_hparams(params)
    mlflow = None
    if options.mlflow.enabled and is_rank_zero():  # ranks > 0 never touch the store
        name = run_label() or run_dir.name
        mlflow = open_mlflow_logger(options.mlflow, run_dir, name, _mlflow_tags(config, run_dir), resumed)
        mlflow.log_params(params)
    return RunLoggers(tensorboard, csv, mlflow, options.mlflow)
