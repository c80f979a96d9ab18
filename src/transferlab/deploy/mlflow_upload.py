"""Add an export to the MLflow run its training run logged to (``<run dir>/mlflow.json``), when there is one.

A run trained with ``logger=mlflow`` uploaded ``model.safetensors`` at its end; ``transferlab export`` runs later,
so it adds ``model.onnx`` / ``model.pt`` and the JSON beside them to the same MLflow run. Best effort: a run
without ``mlflow.json``, a machine without MLflow or a store that cannot be reached costs the export nothing
(one line says why the upload was skipped).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from transferlab.rundir.layout import MLFLOW_FILE


def upload_export(run_dir: Path, files: list[Path]) -> str:
    """Log ``files`` as artifacts of the MLflow run recorded in ``run_dir``; returns one line saying what happened."""
    record_path = Path(run_dir) / MLFLOW_FILE
    if not record_path.is_file():
        return ""
    try:
        record = json.loads(record_path.read_text())
        run_id, uri = str(record["run_id"]), str(record["tracking_uri"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"  MLflow: {record_path} cannot be read ({type(err).__name__}); the export was not uploaded"
    if importlib.util.find_spec("mlflow") is None:
        return f"  MLflow: not installed here, so the export was not added to run {run_id} (pip install -e '.[mlflow]')"
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=uri)
        for path in files:
            client.log_artifact(run_id, str(path))
    except Exception as err:  # a store that moved, a server that is down: the export itself is done
        detail = " ".join(str(err).split())[:160]
        return f"  MLflow: the export was not added to run {run_id} in {uri} ({type(err).__name__}: {detail})"
    return f"  MLflow: added {', '.join(p.name for p in files)} to run {run_id} in {uri}"
