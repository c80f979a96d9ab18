"""Experiment tracking beyond TensorBoard: a CSV table and an MLflow run, each one step axis across all stages.

Fast, in process: every new ``logger.*`` key refused with exit 2 by ``transferlab train``'s preflight (key, value,
fix, one paragraph), the missing-MLflow error (MLflow hidden from the import system, so it runs where MLflow is
not installed), the CSV table's step offset and resume, and a real in-process run with ``logger=csv``.
Slow, real ``transferlab train`` subprocesses: ``logger=csv``; ``logger=mlflow`` read back with ``MlflowClient``
(params, metric histories continuous across stages, artifacts, the run record); a sweep (one MLflow run per job in
one experiment); DDP on 2 CPU processes (rank 0 alone logs); a bad value refused before Hydra starts. The MLflow
tests need the extra (``pip install -e ".[mlflow]"``) and are skipped without it.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.machinery
import io
import json
import sys
import types
from pathlib import Path

import pytest

from tests.clitools import FAST, REPO, run_cli, stop_before_hydra
from transferlab.cli.main import main
from transferlab.config.compose import compose
from transferlab.config.logger import LoggerOptions, MLflowOptions
from transferlab.config.run import GROUP_KEYS, parse_run_options
from transferlab.errors import ConfigError, RunInterrupted
from transferlab.run.csv_logger import RunCSVLogger
from transferlab.run.spec import resolve
from transferlab.run.tracking import RunLoggers

# small_cnn on 64 synthetic images: a probe epoch, then 2 fine-tune epochs (2 stages, 3 plan-step fits of 1 step)
JOB = [
    *FAST,
    "backbone=small_cnn",
    "data=synthetic",
    "data.num_samples.train=64",
    "data.num_samples.val=32",
    "data.num_samples.test=32",
    "strategy=lp_ft",
    "strategy.stages.probe.epochs=1",
    "strategy.stages.finetune.epochs=2",
    "trainer.log_every_n_steps=1",
    "callbacks=none",
]


def _options(*overrides: str) -> LoggerOptions:
    resolved = resolve(compose(list(overrides)))
    return parse_run_options({k: v for k, v in resolved.items() if k not in GROUP_KEYS}).logger


def _csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def _check_one_table(rows: list[dict[str, str]]) -> None:
    """Rows of both stages, steps never going back, fine-tune rows after the probe's."""
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(steps), f"steps go back: {steps}"
    stage_of = {int(r["step"]): float(r["stage"]) for r in rows if r.get("stage")}
    assert sorted(set(stage_of.values())) == [1.0, 2.0], f"rows of both stages: {stage_of}"
    probe = [s for s, st in stage_of.items() if st == 1.0]
    finetune = [s for s, st in stage_of.items() if st == 2.0]
    assert max(probe) < min(finetune), f"the fine-tune steps continue after the probe's: {stage_of}"
    assert any(r.get("train/loss") for r in rows) and any(r.get("val/acc") for r in rows)
    assert sum(1 for r in rows if r.get("test/acc")) == 2, "one test row per stage (test_each_stage)"


# ---- the keys ------------------------------------------------------------------------------------------------
def test_the_shipped_options_switch_trackers_on_next_to_tensorboard(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    default = _options()
    assert (default.tensorboard, default.csv, default.mlflow.enabled) == (True, False, False)
    assert default.mlflow.tracking_uri == "sqlite:///outputs/.mlflow/mlflow.db", "a local store, no server"
    assert default.mlflow.experiment_name == "train", "the experiment is the run's task_name"
    assert _options("logger=csv").csv and _options("logger=csv").tensorboard
    assert not _options("logger=none").tensorboard and not _options("logger=none").csv
    both = _options("logger=mlflow", "paths.output_root=/scratch/runs", "task_name=study")
    assert both.tensorboard and both.mlflow.enabled and both.mlflow.log_model
    assert both.mlflow.tracking_uri == "sqlite:////scratch/runs/.mlflow/mlflow.db"  # absolute: four slashes
    assert both.mlflow.experiment_name == "study"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert _options("logger=mlflow").mlflow.tracking_uri == "http://tracking:5000", "MLflow's own variable wins"


def test_a_run_config_of_an_older_version_reads_with_the_defaults():
    options = parse_run_options({"logger": {"tensorboard": False}})
    assert options.logger == LoggerOptions(tensorboard=False, mlflow=MLflowOptions(experiment_name="train"))
    assert options.tensorboard is False


@pytest.fixture
def preflight_only(monkeypatch, tmp_path):
    """``transferlab train`` in process, stopped where Hydra's app would start (a case that slips through fails)."""

    stop_before_hydra(monkeypatch, tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def train(*overrides: str) -> tuple[object, str]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["train", "backbone=small_cnn", *overrides])
            except SystemExit as exit_:
                return exit_.code, err.getvalue().strip()
        return 0, err.getvalue().strip()

    return train


BAD = {
    "csv_not_a_bool": ("logger.csv=maybe", "logger.csv='maybe': expected true or false"),
    "tensorboard_not_a_bool": ("logger.tensorboard=2", "logger.tensorboard=2: expected true or false"),
    "unknown_logger_key": ("+logger.mlfow=true", "logger.mlfow: unknown key; did you mean 'mlflow'?"),
    "mlflow_not_a_group": ("logger.mlflow=null", "logger.mlflow=null: expected the group of MLflow keys"),
    "mlflow_enabled_not_a_bool": ("logger.mlflow.enabled=yes_please", "logger.mlflow.enabled='yes_please'"),
    "unknown_mlflow_key": ("+logger.mlflow.trackng_uri=x", "logger.mlflow.trackng_uri: unknown key; did you mean"),
    "tracking_uri_a_bare_path": ("logger.mlflow.tracking_uri=mlruns", "logger.mlflow.tracking_uri='mlruns': not a"),
    "tracking_uri_unknown_scheme": ("logger.mlflow.tracking_uri=ftp://host/x", "unknown scheme 'ftp'"),
    "tracking_uri_not_a_string": ("logger.mlflow.tracking_uri=[1,2]", "logger.mlflow.tracking_uri=[1, 2]"),
    "experiment_name_empty": ("logger.mlflow.experiment_name=''", "logger.mlflow.experiment_name='': must not be"),
    "experiment_name_null": ("logger.mlflow.experiment_name=null", "logger.mlflow.experiment_name is required"),
    "log_model_not_a_bool": ("logger.mlflow.log_model=3", "logger.mlflow.log_model=3: expected true or false"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_logger_value_exits_2_before_training_naming_the_key_and_the_fix(preflight_only, name):
    override, needle = BAD[name]
    status, stderr = preflight_only(override)
    assert status == 2, (status, stderr)
    assert stderr.startswith("transferlab: error:") and len(stderr.splitlines()) == 1, stderr
    fix = "did you mean" if "unknown key" in needle else "Fix:"  # the repo's unknown-key style: the closest key
    assert needle in stderr and fix in stderr and "Traceback" not in stderr, stderr


def test_mlflow_on_without_mlflow_installed_is_one_clear_error_with_the_pip_command(preflight_only, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` finds where it is not installed
    status, stderr = preflight_only("logger=mlflow")
    assert status == 2, (status, stderr)
    assert stderr.startswith("transferlab: error: logger.mlflow.enabled=true: MLflow is not installed"), stderr
    assert """pip install -e ".[mlflow]\"""" in stderr and "pip install 'transferlab[mlflow]'" in stderr, stderr
    assert "logger.mlflow.enabled=false" in stderr and len(stderr.splitlines()) == 1, stderr
    with pytest.raises(AssertionError, match="slipped through preflight"):
        preflight_only("logger=csv")  # MLflow off: nothing to check
    with pytest.raises(ConfigError, match="MLflow is not installed"):
        _options("logger=tensorboard", "logger.mlflow.enabled=true")


def test_a_sqlite_store_without_alembic_names_what_to_install(monkeypatch):
    found = types.ModuleType("mlflow")  # MLflow "installed" (found, never imported), Alembic not
    found.__spec__ = importlib.machinery.ModuleSpec("mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow", found)
    monkeypatch.setitem(sys.modules, "alembic", None)
    with pytest.raises(ConfigError, match=r"logger\.mlflow\.tracking_uri=.*needs alembic\. Fix: pip install alembic"):
        _options("logger=mlflow")


class _Ended:
    """Stands in for the MLflow logger: records how the run was ended."""

    def __init__(self) -> None:
        self.status: str | None = None

    def end(self, status: str) -> None:
        self.status = status


@pytest.mark.parametrize(("error", "status"), [(RunInterrupted(2, "stopped"), "KILLED"), (ValueError(), "FAILED")])
def test_a_stopped_run_ends_its_mlflow_run_killed_and_a_failed_one_failed(tmp_path, error, status):
    mlflow = _Ended()
    loggers = RunLoggers(csv=RunCSVLogger(str(tmp_path)), mlflow=mlflow)  # type: ignore[arg-type]
    loggers.csv.log_metrics({"train/loss": 1.0}, 0)
    loggers.abort(error)
    assert mlflow.status == status and len(_csv_rows(tmp_path)) == 1


# ---- the CSV table -------------------------------------------------------------------------------------------
def test_the_csv_logger_writes_every_step_at_the_offset_the_engine_moves(tmp_path):
    loggers = RunLoggers(csv=RunCSVLogger(str(tmp_path)))
    for fit in range(3):  # three plan steps, each a Trainer whose steps start at 0
        for step in range(2):
            loggers.csv.log_metrics({"train/loss": 1.0 / (1 + step), "stage": float(fit)}, step)
        loggers.step_offset += 2
    assert loggers.step_offset == 6 and loggers.csv.step_offset == 6
    rows = _csv_rows(tmp_path)
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4, 5], "written at once, on one axis"
    loggers.csv.log_run_hparams({"strategy": "lp_ft", "seed": 0})
    assert "strategy: lp_ft" in (tmp_path / "csv" / "hparams.yaml").read_text()


def test_a_resumed_csv_table_keeps_the_finished_steps_and_drops_the_ones_logged_again(tmp_path):
    first = RunCSVLogger(str(tmp_path))
    for step in range(5):  # killed after step 4; its last checkpoint was at step 2
        first.log_metrics({"train/loss": float(step)}, step)
    again = RunCSVLogger(str(tmp_path))  # the resumed process
    again.step_offset = 3
    again.log_metrics({"train/loss": 30.0, "val/acc": 0.5}, 0)
    again.log_metrics({"train/loss": 40.0}, 1)
    rows = _csv_rows(tmp_path)
    assert [(int(r["step"]), float(r["train/loss"])) for r in rows] == [(0, 0), (1, 1), (2, 2), (3, 30), (4, 40)]
    assert rows[3]["val/acc"] == "0.5" and rows[0]["val/acc"] == "", "a new column extends the old rows"


def test_an_in_process_run_with_logger_csv_writes_one_table_for_both_stages(tmp_path, monkeypatch):
    from transferlab.cli.common import compose_config
    from transferlab.run.engine import run

    monkeypatch.chdir(tmp_path)
    cheap = ["strategy.stages.finetune.epochs=1", "logger.tensorboard=false", "export=false"]  # 2 fits, 2 stages
    cfg = compose_config([*JOB, *cheap, "logger=csv", f"paths.output_root={tmp_path}"])
    run_dir = tmp_path / "run"
    run(cfg, run_dir)
    _check_one_table(_csv_rows(run_dir))
    assert "backbone.name: small_cnn" in (run_dir / "csv" / "hparams.yaml").read_text()
    assert not (run_dir / "tensorboard").exists() and not (run_dir / "mlflow.json").exists()


# ---- real `transferlab train` subprocesses -------------------------------------------------------------------
def _train(tmp: Path, name: str, *overrides: str, **kwargs) -> object:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the default local store, whatever this shell says
        return run_cli(
            "train", *JOB, f"paths.output_root={tmp / 'outputs'}", *overrides, f"hydra.run.dir={tmp / name}",
            cwd=tmp, **kwargs,
        )  # fmt: skip


@pytest.mark.slow
def test_logger_csv_writes_rows_of_every_stage_on_one_step_axis(tmp_path):
    _train(tmp_path, "run", "logger=csv")
    run_dir = tmp_path / "run"
    _check_one_table(_csv_rows(run_dir))
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*")), "TensorBoard stays on"
    assert "strategy: lp_ft" in (run_dir / "csv" / "hparams.yaml").read_text()


@pytest.fixture(scope="module")
def mlflow_run(tmp_path_factory) -> tuple[Path, object, dict]:
    pytest.importorskip("mlflow")
    tmp = tmp_path_factory.mktemp("mlflow")
    proc = _train(tmp, "run", "logger=mlflow", "tags=[smoke]")
    record = json.loads((tmp / "run" / "mlflow.json").read_text())
    return tmp, proc, record


@pytest.mark.slow
def test_logger_mlflow_logs_into_a_local_store_under_the_output_root(mlflow_run):
    tmp, proc, record = mlflow_run
    db = tmp / "outputs" / ".mlflow" / "mlflow.db"
    assert record["tracking_uri"] == f"sqlite:///{db}" and db.is_file(), record
    assert f"MLflow: run {record['run_id']} in sqlite:///{db}" in proc.stdout, proc.stdout
    assert record["status"] == "FINISHED" and record["experiment_name"] == "train"
    assert record["ui"] == f"mlflow ui --backend-store-uri sqlite:///{db}"
    assert record["artifact_uri"].startswith((tmp / "outputs" / ".mlflow" / "artifacts").as_uri()), record
    assert not (tmp / "mlruns").exists(), "nothing in the working directory"


@pytest.mark.slow
def test_mlflow_reads_back_params_tags_continuous_metrics_and_artifacts(mlflow_run):
    from mlflow.tracking import MlflowClient

    tmp, _, record = mlflow_run
    client = MlflowClient(record["tracking_uri"])
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.info.experiment_id == record["experiment_id"]
    params = run.data.params
    assert params["strategy"] == "lp_ft" and params["backbone.name"] == "small_cnn" and params["seed"] == "0"
    assert params["strategy.stages.finetune.epochs"] == "2" and params["data.num_samples.train"] == "64"
    tags = run.data.tags
    assert tags["transferlab.run_dir"] == str(tmp / "run") and tags["transferlab.tags"] == "smoke"
    stage = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "stage")]
    assert [v for _, v in stage] == [1.0, 2.0, 2.0], stage
    loss = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert loss == sorted(loss) and len(set(loss)) == len(loss) == 3, f"one step axis over both stages: {loss}"
    tests = [m.step for m in client.get_metric_history(run.info.run_id, "test/acc")]
    assert len(tests) == 2 and tests[0] < tests[1], f"each stage's test at its own step: {tests}"
    metrics = json.loads((tmp / "run" / "metrics.json").read_text())
    assert run.data.metrics["final/test/acc"] == pytest.approx(metrics["final"]["test/acc"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "config.yaml", "model.safetensors"} <= artifacts, artifacts
    assert sorted(record["artifacts"]) == sorted(artifacts)
    local = Path(client.download_artifacts(run.info.run_id, "metrics.json", str(tmp / "down")))
    assert json.loads(local.read_text())["final"] == metrics["final"]


@pytest.mark.slow
def test_a_sweep_logs_one_mlflow_run_per_job_in_one_experiment(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        sweep = tmp_path / "sweep"
        run_cli(
            "train", "-m", *JOB, "logger=mlflow", "logger.mlflow.log_model=false", "task_name=study",
            "seed=0,1", f"paths.output_root={tmp_path / 'outputs'}", f"hydra.sweep.dir={sweep}", cwd=tmp_path,
        )  # fmt: skip
    records = [json.loads((sweep / job / "mlflow.json").read_text()) for job in ("0", "1")]
    assert len({r["run_id"] for r in records}) == 2 and {r["experiment_name"] for r in records} == {"study"}
    client = MlflowClient(records[0]["tracking_uri"])
    experiment = client.get_experiment_by_name("study")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(r["run_id"] for r in records)
    assert sorted(r.info.run_name for r in runs) == ["seed=0", "seed=1"], "named by what the sweep varies"
    assert {r.data.tags["transferlab.sweep_dir"] for r in runs} == {str(sweep)}
    assert all("model.safetensors" not in r["artifacts"] for r in records), "log_model=false keeps the model out"


@pytest.mark.slow
def test_under_ddp_rank_zero_alone_logs_one_mlflow_run_and_one_table(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    _train(tmp_path, "run", "trainer=ddp_cpu", "logger=mlflow", "logger.csv=true")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["ddp"]["world_size"] == 2
    record = json.loads((tmp_path / "run" / "mlflow.json").read_text())
    assert record["status"] == "FINISHED", record
    client = MlflowClient(record["tracking_uri"])
    runs = client.search_runs([record["experiment_id"]])
    assert [r.info.run_id for r in runs] == [record["run_id"]], "one MLflow run for the two ranks"
    steps = [m.step for m in client.get_metric_history(record["run_id"], "train/loss")]
    assert len(steps) == len(set(steps)), f"each step logged once, not once per rank: {steps}"
    rows = _csv_rows(tmp_path / "run")
    _check_one_table(rows)
    assert len(rows) == len({tuple(r.items()) for r in rows}), "no row written twice"


@pytest.mark.slow
def test_a_killed_run_resumes_into_the_same_mlflow_run_and_csv_table(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    with_checkpoints = [o for o in JOB if o != "callbacks=none"]
    kill = {"TRANSFERLAB_TEST_KILL": "stage_end:probe", "PYTHONPATH": str(REPO)}  # SIGKILL after the probe's test
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        run_dir = tmp_path / "run"
        common = [f"paths.output_root={tmp_path / 'outputs'}", f"hydra.run.dir={run_dir}"]
        extra = ["logger=mlflow", "logger.csv=true", "+callbacks.extra.kill._target_=tests.run.killer.KillAt"]
        killed = run_cli("train", *with_checkpoints, *extra, *common, cwd=tmp_path, check=False, env=kill)
        assert killed.returncode != 0 and not (run_dir / "metrics.json").exists(), killed.stderr[-2000:]
        first = json.loads((run_dir / "mlflow.json").read_text())
        assert first["status"] == "RUNNING", "a SIGKILL leaves the record as the run was"
        run_cli("resume", str(run_dir), cwd=tmp_path, env={"PYTHONPATH": str(REPO)})
    record = json.loads((run_dir / "mlflow.json").read_text())
    assert record["run_id"] == first["run_id"] and record["status"] == "FINISHED", (first, record)
    client = MlflowClient(record["tracking_uri"])
    assert len(client.search_runs([record["experiment_id"]])) == 1, "the resumed run logs into the same MLflow run"
    stages = [(m.step, m.value) for m in client.get_metric_history(record["run_id"], "stage")]
    assert [v for _, v in stages] == [1.0, 2.0, 2.0] and stages == sorted(stages), stages
    _check_one_table(_csv_rows(run_dir))


@pytest.mark.slow
def test_a_store_that_cannot_be_opened_or_a_deleted_experiment_names_the_key(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from transferlab.run.mlflow_logger import open_mlflow_logger

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
        with pytest.raises(ConfigError, match=r"^logger\.mlflow\.tracking_uri='file:.*cannot be opened.*Fix:"):
            open_mlflow_logger(MLflowOptions(True, (tmp_path / "mlruns").as_uri()), tmp_path, "r", {}, False)
    client = MlflowClient(uri)
    client.delete_experiment(client.create_experiment("gone"))
    with pytest.raises(ConfigError, match=r"^logger\.mlflow\.experiment_name='gone': the experiment is deleted"):
        open_mlflow_logger(MLflowOptions(True, uri, "gone"), tmp_path, "r", {}, False)
    logger = open_mlflow_logger(MLflowOptions(True, uri, "kept"), tmp_path, "r", {}, False)
    again = open_mlflow_logger(MLflowOptions(True, uri, "kept"), tmp_path, "r", {}, resumed=True)
    assert again.run_id == logger.run_id, "a resumed run dir continues the MLflow run its mlflow.json names"
    other = open_mlflow_logger(MLflowOptions(True, uri, "kept"), tmp_path, "r", {}, resumed=False)
    assert other.run_id != logger.run_id, "a fresh start opens a new MLflow run"


@pytest.mark.slow
def test_a_bad_tracking_uri_is_refused_before_hydra_starts_and_writes_nothing(tmp_path):
    proc = _train(tmp_path, "run", "logger=mlflow", "logger.mlflow.tracking_uri=mlruns", check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("transferlab: error: logger.mlflow.tracking_uri='mlruns'"), lines
    assert "Fix: logger.mlflow.tracking_uri=sqlite:///" in lines[0]
    assert not (tmp_path / "run" / "metrics.json").exists() and not (tmp_path / "outputs" / ".mlflow").exists()
