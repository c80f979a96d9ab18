"""The ``logger`` group: which experiment trackers a run writes to, checked at the edge.

TensorBoard is the default; a CSV table and an MLflow run can be added (``conf/logger/*.yaml``)::

    tensorboard: true          <run dir>/tensorboard/<run name>/
    csv: false                 <run dir>/csv/metrics.csv (+ hparams.yaml)
    mlflow:
      enabled: false           one MLflow run per job
      tracking_uri: sqlite:///<paths.output_root>/.mlflow/mlflow.db   (or $MLFLOW_TRACKING_URI)
      experiment_name: ${task_name}
      log_model: true          upload model.safetensors (and exported model files) as artifacts

MLflow is an optional extra: ``logger.mlflow.enabled=true`` without it installed is refused here, before any
training, with the pip command. MLflow 3's plain file store (``./mlruns``) refuses to open unless
``MLFLOW_ALLOW_FILE_STORE=true``, so the local default is a SQLite store (SQLAlchemy and Alembic, which the
core dependencies already bring).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from transferlab.config.readers import check_keys, read_bool, read_mapping, read_str
from transferlab.errors import ConfigError

LOGGER_KEYS = ("tensorboard", "csv", "mlflow")
MLFLOW_KEYS = ("enabled", "tracking_uri", "experiment_name", "log_model")
#: The tracking URI schemes MLflow's client opens (a database, a server, Databricks, the legacy file store).
MLFLOW_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "databricks-uc", "file")
INSTALL_HINT = "pip install -e \".[mlflow]\" (a checkout) or pip install 'transferlab[mlflow]'"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9.-]*)(\+[A-Za-z0-9_]+)?:")
_URI_EXAMPLE = "sqlite:///outputs/.mlflow/mlflow.db"


@dataclass(frozen=True)
class MLflowOptions:
    """``logger.mlflow``: one MLflow run per job.

    Attributes:
        enabled: Log to MLflow.
        tracking_uri: Where runs are stored: a database URI (``sqlite:///…``), a server (``http://host:5000``).
        experiment_name: The MLflow experiment (every job of a sweep joins the same one).
        log_model: Upload ``model.safetensors`` and exported model files as artifacts at the end of the run.
    """

    enabled: bool = False
    tracking_uri: str = _URI_EXAMPLE
    experiment_name: str = "train"
    log_model: bool = True


@dataclass(frozen=True)
class LoggerOptions:
    """The ``logger`` group (see the module docstring).

    Attributes:
        tensorboard: TensorBoard events (and the HParams session) under ``<run dir>/tensorboard``.
        csv: Every logged scalar as one table, ``<run dir>/csv/metrics.csv``.
        mlflow: The MLflow run.
    """

    tensorboard: bool = True
    csv: bool = False
    mlflow: MLflowOptions = field(default_factory=MLflowOptions)


def default_tracking_uri(output_root: str) -> str:
    """The local store of ``conf/logger``: ``sqlite:///<output_root>/.mlflow/mlflow.db``.

    SQLAlchemy reads ``sqlite:///`` + a relative path as relative to the working directory (like
    ``paths.output_root`` itself) and ``sqlite:///`` + ``/abs/path`` as absolute, so plain concatenation is right.
    """
    return f"sqlite:///{output_root.rstrip('/')}/.mlflow/mlflow.db"


def _tracking_uri(raw: Mapping[str, Any], where: str, default: str) -> str:
    full = f"{where}.tracking_uri"
    fix = f"Fix: {full}={_URI_EXAMPLE} (a local store) or {full}=http://<host>:5000 (a tracking server)"
    uri = str(read_str(raw, "tracking_uri", default, example=_URI_EXAMPLE, where=where))
    match = _SCHEME.match(uri)
    scheme = match.group(1).lower() if match else None
    if scheme is None or len(scheme) == 1:  # a bare path, or a Windows drive letter (C:\...)
        raise ConfigError(
            f"{full}={uri!r}: not a tracking URI; a bare path means MLflow's file store, which MLflow 3 no longer "
            f"opens by default. {fix}."
        )
    if scheme not in MLFLOW_SCHEMES:
        known = ", ".join(MLFLOW_SCHEMES)
        raise ConfigError(f"{full}={uri!r}: unknown scheme {scheme!r}; MLflow opens {known}. {fix}.")
    return uri


def _require_mlflow(uri: str, where: str) -> None:
    """Refuse an MLflow run this environment cannot log (found without importing MLflow, which takes seconds)."""
    if importlib.util.find_spec("mlflow") is None:
        raise ConfigError(
            f"{where}.enabled=true: MLflow is not installed. Fix: {INSTALL_HINT}, or {where}.enabled=false."
        )
    if uri.lower().startswith("sqlite:"):  # MLflow's database store; mlflow-skinny does not bring it
        missing = [name for name in ("sqlalchemy", "alembic") if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigError(
                f"{where}.tracking_uri={uri!r}: a SQLite store needs {' and '.join(missing)}. "
                f"Fix: pip install {' '.join(missing)}, or {where}.tracking_uri=http://<host>:5000 (a server)."
            )


def parse_mlflow(raw: Mapping[str, Any], task_name: str, output_root: str) -> MLflowOptions:
    """Read ``logger.mlflow`` (every value checked, also while it is off).

    Args:
        raw: The plain ``logger.mlflow`` mapping.
        task_name: The run's ``task_name``: the experiment when ``experiment_name`` is absent.
        output_root: ``paths.output_root``: the local store when ``tracking_uri`` is absent.

    Raises:
        ConfigError: On an unknown key, a bad value, or ``enabled=true`` where MLflow is not installed.
    """
    where = "logger.mlflow"
    check_keys(raw, MLFLOW_KEYS, where=where)
    options = MLflowOptions(
        enabled=bool(read_bool(raw, "enabled", False, where=where)),
        tracking_uri=_tracking_uri(raw, where, default_tracking_uri(output_root)),
        experiment_name=str(read_str(raw, "experiment_name", task_name, example="my_study", where=where)),
        log_model=bool(read_bool(raw, "log_model", True, where=where)),
    )
    if options.enabled:
        _require_mlflow(options.tracking_uri, where)
    return options


def parse_logger(raw: Mapping[str, Any], task_name: str = "train", output_root: str = "outputs") -> LoggerOptions:
    """Read the ``logger`` group.

    Args:
        raw: The plain ``logger`` mapping (``{tensorboard: true}`` of older runs reads with the defaults).
        task_name: The run's ``task_name`` (MLflow's default experiment).
        output_root: ``paths.output_root`` (MLflow's default local store).

    Raises:
        ConfigError: On an unknown key or a bad value (naming ``logger.<key>``, the value and the fix).
    """
    where = "logger"
    check_keys(raw, LOGGER_KEYS, where=where)
    if "mlflow" in raw and raw["mlflow"] is None:  # reads as "MLflow off", but would only be by accident
        raise ConfigError(
            "logger.mlflow=null: expected the group of MLflow keys. Fix: logger.mlflow.enabled=false (MLflow off)."
        )
    return LoggerOptions(
        tensorboard=bool(read_bool(raw, "tensorboard", True, where=where)),
        csv=bool(read_bool(raw, "csv", False, where=where)),
        mlflow=parse_mlflow(read_mapping(raw, "mlflow", where=where), task_name, output_root),
    )
