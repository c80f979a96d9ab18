"""One MLflow run for a whole transferlab run: every plan step's ``Trainer`` logs into it, on one step axis.

:func:`open_mlflow_logger` opens the store (a local SQLite database by default, ``conf/logger``), the
experiment and the run before training, and records where in ``<run dir>/mlflow.json``; a resumed run
continues the same MLflow run. At the end :func:`finish_mlflow` uploads the run's files and ends the run.
MLflow is an optional extra, imported only here and only when ``logger.mlflow.enabled`` (the config parser has
already checked that it is installed). Everything here runs on rank 0 only (the engine does not build an MLflow
logger on the other ranks): the ranks share one run dir and one MLflow run.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from typing_extensions import override

from transferlab.config.logger import MLflowOptions
from transferlab.errors import ConfigError
from transferlab.rundir.layout import CONFIG_FILE, METRICS_FILE, MLFLOW_FILE, MODEL_CARD_FILE, MODEL_FILES_GLOB
from transferlab.rundir.metrics import write_json_atomic

log = logging.getLogger(__name__)

#: Where a SQLite store keeps artifacts: beside its database (MLflow's default, ``./mlruns``, is the cwd's).
ARTIFACTS_DIR = "artifacts"
#: MLflow keys take letters, digits and ``_ - . / space``; anything else (a ``+``/``~`` of an override) is ``_``.
_BAD_KEY = re.compile(r"[^\w./ -]")
#: MLflow's longest key.
_MAX_KEY = 250
Status = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]


class RunMLflowLogger(MLFlowLogger):
    """``MLFlowLogger`` with a step offset, kept open across the run's ``Trainer.fit`` calls.

    Args:
        **kwargs: Passed to ``MLFlowLogger`` (``experiment_name``, ``tracking_uri``, ``run_name``, ``tags``,
            ``run_id``).
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs["log_model"] = False  # checkpoints stay in the run dir; finish_mlflow uploads the exported model
        super().__init__(**kwargs)
        self.step_offset = 0

    @override
    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log scalars at ``step + step_offset``."""
        super().log_metrics(metrics, (step or 0) + self.step_offset)

    @override
    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        """End the MLflow run only when a fit failed: after a good fit the next plan step logs on into it."""
        if status != "success":
            super().finalize(status)

    @rank_zero_only
    def end(self, status: Status) -> None:
        """Mark the MLflow run ``FINISHED``, ``FAILED`` or ``KILLED``."""
        if self._initialized:
            self.experiment.set_terminated(self.run_id, status)

    @rank_zero_only
    def log_params(self, values: Mapping[str, Any]) -> None:
        """Log the run's flat hyperparameters as MLflow params (keys made valid; values cut to 250 characters)."""
        params = {_BAD_KEY.sub("_", str(k))[:_MAX_KEY]: v for k, v in values.items()}
        try:
            self.log_hyperparams(params)
        except Exception as err:  # a resumed run whose params differ: MLflow refuses to change them
            log.warning("mlflow: params not logged (%s)", " ".join(str(err).split())[:300])


def local_store(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the working directory, like SQLAlchemy's), else None."""
    if not uri.lower().startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextmanager
def _store_lock(db: Path | None) -> Iterator[None]:
    """Hold ``<db>.lock`` while a SQLite store is created and its experiment looked up or created.

    The jobs of a parallel sweep start together: without it two would both find no tables (or no experiment)
    and both create them, and one would fail.
    """
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return str(client.create_experiment(name, artifact_location=artifact_location))
        except MlflowException:  # another job (on a shared server) created it since
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        raise ConfigError(
            f"logger.mlflow.experiment_name={name!r}: the experiment is deleted in this store, and MLflow keeps "
            f"its name. Fix: restore it (mlflow experiments restore --experiment-id {found.experiment_id}) or "
            "name another one, logger.mlflow.experiment_name=<name>."
        )
    return str(found.experiment_id)


def _earlier_run(run_dir: Path, uri: str) -> str | None:
    """The MLflow run an earlier attempt of this run dir opened in the same store, if it recorded one."""
    try:
        record = json.loads((run_dir / MLFLOW_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("tracking_uri") != uri:
        return None
    return str(record["run_id"]) if record.get("run_id") else None


def _run_exists(client: Any, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).info.lifecycle_stage != "deleted"
    except MlflowException:
        return False


def open_mlflow_logger(
    options: MLflowOptions, run_dir: Path, run_name: str, tags: Mapping[str, str], resumed: bool
) -> RunMLflowLogger:
    """Open the store, the experiment and the MLflow run, and record them in ``<run dir>/mlflow.json``.

    Args:
        options: ``logger.mlflow``.
        run_dir: The run directory.
        run_name: The MLflow run name (what the job varies, as the TensorBoard run name).
        tags: Tags of the MLflow run.
        resumed: The run continues from a checkpoint: log into the MLflow run of the earlier attempt.

    Raises:
        ConfigError: When the store cannot be opened (naming ``logger.mlflow.tracking_uri``) or the experiment
            is deleted.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = options.tracking_uri
    db = local_store(uri)
    artifacts = None if db is None else (db.parent / ARTIFACTS_DIR).resolve().as_uri()
    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _store_lock(db):
            client = MlflowClient(uri)  # a new SQLite store's tables are created here: once, under the lock
            _experiment_id(client, options.experiment_name, artifacts)
        earlier = _earlier_run(run_dir, uri) if resumed else None
        run_id = earlier if earlier is not None and _run_exists(client, earlier) else None
        logger = RunMLflowLogger(
            experiment_name=options.experiment_name, tracking_uri=uri, run_name=run_name, tags=dict(tags), run_id=run_id
        )
        _ = logger.run_id  # the run is created now, so mlflow.json names it before training starts
        if run_id is not None:
            client.update_run(run_id, status="RUNNING")
    except (MlflowException, OSError) as err:
        first = " ".join(str(err).split())[:300]
        raise ConfigError(
            f"logger.mlflow.tracking_uri={uri!r}: the MLflow store cannot be opened ({first}). Fix: start the "
            "server it names, or log locally, logger.mlflow.tracking_uri=sqlite:///outputs/.mlflow/mlflow.db."
        ) from err
    finally:
        # Lightning sets MLflow's process-wide URI (and $MLFLOW_TRACKING_URI): the next job of an in-process
        # sweep would compose its config with this one's store; the logger keeps its own client.
        mlflow.set_tracking_uri(env_uri)
    write_record(run_dir, logger, options, "RUNNING")
    return logger


def write_record(
    run_dir: Path, logger: RunMLflowLogger, options: MLflowOptions, status: Status, artifacts: list[str] | None = None
) -> dict[str, Any]:
    """Write ``<run dir>/mlflow.json``: the run id, experiment, store, artifact URI and how to look at it."""
    run = logger.experiment.get_run(logger.run_id)
    uri = options.tracking_uri
    if uri.lower().startswith(("http:", "https:")):
        look = f"{uri.rstrip('/')}/#/experiments/{logger.experiment_id}/runs/{logger.run_id}"
    else:
        look = f"mlflow ui --backend-store-uri {uri}"
    record: dict[str, Any] = {
        "run_id": logger.run_id,
        "run_name": run.info.run_name,
        "experiment_id": logger.experiment_id,
        "experiment_name": options.experiment_name,
        "tracking_uri": uri,
        "artifact_uri": run.info.artifact_uri,
        "status": status,
        "ui": look,
    }
    if artifacts is not None:
        record["artifacts"] = artifacts
    write_json_atomic(run_dir / MLFLOW_FILE, record)
    return record


def run_files(run_dir: Path, log_model: bool) -> list[Path]:
    """The files uploaded at the end: metrics.json, config.yaml, the model card, and (log_model) the model files."""
    files = [run_dir / name for name in (METRICS_FILE, CONFIG_FILE, MODEL_CARD_FILE)]
    if log_model:  # model.safetensors, and model.onnx / model.pt with the JSON beside them where exported
        files += sorted(run_dir.glob(MODEL_FILES_GLOB))
    return [path for path in files if path.is_file()]


def finish_mlflow(
    logger: RunMLflowLogger, run_dir: Path, options: MLflowOptions, final: Mapping[str, Any]
) -> dict[str, Any]:
    """Log the final metrics (``final/<name>``, at the run's last step), upload the run's files, end the run.

    Args:
        logger: The run's MLflow logger.
        run_dir: The run directory (its files are written: this runs after ``write_outputs``).
        options: ``logger.mlflow``.
        final: ``metrics.json``'s ``final`` (the headline test metric, the last stage's best validation ones).

    Returns:
        The record written to ``mlflow.json``.
    """
    numbers = {k: v for k, v in final.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    scalars = {f"final/{k}": float(v) for k, v in numbers.items()}
    if scalars:
        logger.log_metrics(scalars, 0)
    files = run_files(run_dir, options.log_model)
    for path in files:
        logger.experiment.log_artifact(logger.run_id, str(path))
    logger.end("FINISHED")
    record = write_record(run_dir, logger, options, "FINISHED", [p.name for p in files])
    print(f"MLflow: run {record['run_id']} in {record['tracking_uri']} (experiment {options.experiment_name!r})")
    return record
