"""Real multiruns: one dir per job, failures that do not stop a sweep, TensorBoard per job, launchers, Optuna."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.clitools import REPO, run_cli

SMALL = [
    "backbone=small_cnn",
    "data=synthetic",
    "strategy=finetune",
    "strategy.stages.finetune.epochs=2",
    "callbacks=none",
    "trainer.enable_progress_bar=false",
]
MISSING = "/nonexistent/weights.safetensors"


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory) -> tuple[Path, object]:
    """4 jobs: 2 seeds × {random init, a weights file that does not exist} → 2 done, 2 failed."""
    tmp = tmp_path_factory.mktemp("grid")
    sweep = tmp / "sweep"
    proc = run_cli(
        "train", "-m", *SMALL, f"hydra.sweep.dir={sweep}", f"backbone.weights=null,{MISSING}", "seed=0,1",
        cwd=tmp, check=False,
    )  # fmt: skip
    return sweep, proc


def _done_jobs(sweep: Path) -> list[Path]:
    return sorted(d for d in sweep.iterdir() if (d / "metrics.json").is_file())


def test_every_job_gets_its_own_dir_with_config_events_and_metrics(grid_sweep):
    sweep, _ = grid_sweep
    assert sorted(d.name for d in sweep.iterdir() if d.is_dir()) == ["0", "1", "2", "3"]
    assert (sweep / "multirun.yaml").is_file()
    done = _done_jobs(sweep)
    assert [d.name for d in done] == ["0", "1"]
    for job in done:
        assert (job / ".hydra" / "config.yaml").is_file() and (job / "config.yaml").is_file()
        assert list((job / "tensorboard").rglob("events.out.tfevents.*"))
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["run_dir"] == str(job) and 0.0 <= metrics["final"]["test/acc"] <= 1.0


def test_a_failing_job_leaves_the_others_complete_and_is_summarised(grid_sweep):
    sweep, proc = grid_sweep
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the sweep ran to its end, then reported failure
    assert "sweep finished: 4 jobs (2 done, 2 failed)" in proc.stderr
    assert f"transferlab report {sweep}" in proc.stderr
    for job in ("2", "3"):
        failure = json.loads((sweep / job / "failure.json").read_text())
        assert failure["error_type"] == "WeightsError" and MISSING in failure["message"]
        assert f"backbone.weights={MISSING}" in failure["overrides"]
        assert "Traceback" in failure["traceback"]
        assert not (sweep / job / "metrics.json").exists()
        assert MISSING in (sweep / job / "train.log").read_text()  # the job's own log names the error


def test_tensorboard_has_an_hparams_row_per_job_with_swept_values_and_a_confusion_matrix(grid_sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    sweep, _ = grid_sweep
    seeds = []
    for job in _done_jobs(sweep):
        metrics = json.loads((job / "metrics.json").read_text())
        event_dir = next((job / "tensorboard").rglob("events.out.tfevents.*")).parent
        acc = EventAccumulator(str(event_dir), size_guidance={"images": 0, "scalars": 0}).Reload()
        content = acc.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hparams = start.session_start_info.hparams
        seeds.append(int(hparams["seed"].number_value))
        assert hparams["backbone.weights"].string_value == "null"  # the swept key, as a column
        assert hparams["strategy"].string_value == "finetune"
        assert acc.Scalars("hparams/test_acc")[-1].value == pytest.approx(metrics["final"]["test/acc"], abs=1e-6)
        assert acc.Scalars("hparams/val_acc")[-1].value == pytest.approx(metrics["final"]["val/acc"], abs=1e-6)
        tags = acc.Tags()
        assert "test/confusion_matrix" in tags["images"], tags["images"]
        image = acc.Images("test/confusion_matrix")[-1]
        assert image.width > 100 and image.height > 100 and image.encoded_image_string[:4] == b"\x89PNG"
        per_class = [t for t in tags["scalars"] if t.startswith("test/acc_class/")]
        assert len(per_class) == metrics["num_classes"]
        details = metrics["test_details"]
        assert sum(map(sum, details["confusion_matrix"])) > 0
        assert {"train/loss", "val/acc", "val/loss", "test/acc", "stage", "lr/head"} <= set(tags["scalars"])
    assert sorted(seeds) == [0, 1]


@pytest.mark.slow  # a real subprocess run: in CI's slow phase, keeping the README suite under 15 min
def test_unexpected_errors_keep_their_traceback_in_the_job_log(tmp_path):
    # A callback that raises when training starts: a programming-level error, not a transferlab user error
    run_dir = tmp_path / "run"
    proc = run_cli(
        "train", *SMALL, "backbone.weights=null", f"hydra.run.dir={run_dir}",
        "+callbacks.extra.boom._target_=tests.cli.boom.Boom",
        cwd=tmp_path, check=False, env={"PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 1
    failure = json.loads((run_dir / "failure.json").read_text())
    assert "Traceback (most recent call last)" in failure["traceback"] and "boom" in failure["traceback"]
    log = (run_dir / "train.log").read_text()
    assert "job failed" in log and "Traceback (most recent call last)" in log


def test_a_callback_without_its_required_argument_is_a_config_error_before_any_dir_is_written(tmp_path):
    # EarlyStopping without its required `monitor` (fixed: it used to end in a traceback after the data loaded)
    run_dir = tmp_path / "run"
    proc = run_cli(
        "train", *SMALL, "backbone.weights=null", f"hydra.run.dir={run_dir}",
        "+callbacks.extra.stop._target_=lightning.pytorch.callbacks.EarlyStopping",
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "callbacks.extra.stop" in proc.stderr and "monitor" in proc.stderr, proc.stderr
    assert not (run_dir / "failure.json").exists() and not (run_dir / ".hydra").exists(), "nothing was run"


@pytest.mark.slow  # a launcher or sweeper plugin end to end: CI's slow phase
def test_parallel_joblib_launcher_runs_a_two_job_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "train", "-m", "hydra/launcher=parallel", *SMALL, "backbone.weights=null", f"hydra.sweep.dir={sweep}",
        "seed=0,1", cwd=tmp_path,
    )  # fmt: skip
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    assert [d.name for d in _done_jobs(sweep)] == ["0", "1"]
    assert "sweep finished: 2 jobs (2 done)" in proc.stdout


@pytest.mark.slow  # a launcher or sweeper plugin end to end: CI's slow phase
def test_slurm_launcher_settings_run_through_submitit_local_executor(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "train", "-m", "hydra/launcher=slurm_local", *SMALL, "backbone.weights=null", f"hydra.sweep.dir={sweep}",
        "seed=0,1", cwd=tmp_path,
    )  # fmt: skip
    assert [d.name for d in _done_jobs(sweep)] == ["0", "1"], proc.stdout + proc.stderr
    # each job went through submitit: its own folder (job id) with its logs and pickled result
    submitted = [d for d in (sweep / ".submitit").iterdir() if d.name.isdigit()]
    assert len(submitted) == 2, submitted
    assert all(list(d.glob("*_result.pkl")) for d in submitted)


@pytest.mark.slow  # a launcher or sweeper plugin end to end: CI's slow phase
def test_optuna_search_runs_trials_and_writes_its_results(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "train", "hparams_search=lp_ft_optuna", "hydra.sweeper.n_trials=3",
        "backbone=small_cnn", "backbone.weights=null", "data=synthetic", "callbacks=none",
        "trainer.enable_progress_bar=false", "strategy.stages.probe.epochs=1", "strategy.stages.finetune.epochs=2",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    jobs = _done_jobs(sweep)
    assert len(jobs) == 3, proc.stdout + proc.stderr
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    values = [json.loads((j / "metrics.json").read_text())["final"]["val/acc"] for j in jobs]
    assert results["best_value"] == pytest.approx(max(values), abs=1e-6)
    assert set(results["best_params"]) == {
        "strategy.stages.finetune.lr_backbone",
        "strategy.stages.finetune.lr_head",
        "strategy.stages.finetune.weight_decay",
    }
    lrs = {yaml.safe_load((j / ".hydra" / "overrides.yaml").read_text())[0] for j in jobs}
    assert len(lrs) == 3  # three different trials
