"""An export is added to the MLflow run its training run recorded in mlflow.json (best effort, never failing)."""

from __future__ import annotations

import json
import sys

import pytest

from transferlab.deploy.mlflow_upload import upload_export


def test_no_record_means_no_upload_and_no_line(tmp_path):
    assert upload_export(tmp_path, [tmp_path / "model.onnx"]) == ""


def test_a_damaged_record_or_no_mlflow_is_one_line_not_a_failure(tmp_path, monkeypatch):
    (tmp_path / "mlflow.json").write_text("{not json")
    assert "cannot be read" in upload_export(tmp_path, [])
    (tmp_path / "mlflow.json").write_text(json.dumps({"run_id": "abc", "tracking_uri": "sqlite:///x.db"}))
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if MLflow were not installed
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert "not installed here" in upload_export(tmp_path, [])


def test_the_export_lands_in_the_recorded_run(tmp_path):
    mlflow = pytest.importorskip("mlflow")  # in the dev extra: runs in CI
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("e", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(experiment).info.run_id
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "mlflow.json").write_text(json.dumps({"run_id": run_id, "tracking_uri": uri}))
    files = [run_dir / "model.onnx", run_dir / "model.onnx.json"]
    for f in files:
        f.write_bytes(b"x")
    line = upload_export(run_dir, files)
    assert line.startswith("  MLflow: added model.onnx, model.onnx.json to run")
    assert {a.path for a in client.list_artifacts(run_id)} == {"model.onnx", "model.onnx.json"}
    (run_dir / "mlflow.json").write_text(json.dumps({"run_id": "0" * 32, "tracking_uri": uri}))
    assert "was not added" in upload_export(run_dir, files)  # a run that is not in the store
