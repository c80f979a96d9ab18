"""Exact resume after SIGKILL, sweeps that skip finished jobs, and determinism (same config + seed → same run)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from tests.clitools import FAST, FAST_OWN_STRATEGY, REPO, run_cli
from tests.run.killer import ENV
from tests.run.outside import THREE_STAGES
from transferlab.run.checkpoints import LastCheckpoint

# With the stage rules and regularisers on, so that every kill point also checks that they resume exactly: an EMA
# of the weights in stages 2 and 3, mixup/CutMix in stage 3, whose plateau rule ends it after 2 of its 3 epochs
# (seed 5), and strategy.final=best choosing across the stages.
RULES = [
    "strategy.stages.all.epochs=3",
    "+strategy.stages.top.ema_decay=0.5",
    "+strategy.stages.top.head_init=ridge",  # a kill between stages redoes it; one inside the stage keeps its head
    "+strategy.stages.all.patience=1",
    "+strategy.stages.all.mixup=0.4",
    "+strategy.stages.all.cutmix=1.0",
    "+strategy.stages.all.ema_decay=0.7",
]
JOB = [
    *THREE_STAGES,
    *RULES,
    "callbacks.checkpoint.last_min_interval_s=0",  # last.ckpt every epoch: a kill point in any epoch resumes there
    "+callbacks.extra.kill._target_=tests.run.killer.KillAt",
]
KILL_POINTS = {
    "mid_epoch": "batch:top:1:0",  # during the 2nd epoch of stage 2 (its EMA half way)
    "between_stages": "stage_end:probe",  # after stage 1's test, before stage 2 starts
    # half way through writing the checkpoint of stage 3's 2nd epoch, the one whose plateau rule ends the stage
    "checkpoint_write": "ckpt_write:all:1",
    # after stage 3's plateau stop and its test: the resumed step must stop at once, not train its 3rd epoch
    "after_the_plateau_stop": "stage_end:all",
    # the default 30 s between last.ckpt writes: stage 2's first epoch is not written, so the resume starts
    # from the end of stage 1 and replays the whole of stage 2
    "mid_epoch_sparse_checkpoints": "batch:top:1:0",
}
SPARSE = {"mid_epoch_sparse_checkpoints": ["callbacks.checkpoint.last_min_interval_s=30"]}


def _train(run_dir: Path, kill: str | None = None, extra: list[str] | None = None) -> int:
    env = {"PYTHONPATH": str(REPO)} | ({ENV: kill} if kill else {})
    args = [*JOB, *(extra or []), f"hydra.run.dir={run_dir}"]
    proc = run_cli("train", *args, cwd=run_dir.parent, env=env, check=False)
    return proc.returncode


def _outcome(run_dir: Path) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    stages = {name: {k: v for k, v in row.items() if k != "seconds"} for name, row in metrics["stages"].items()}
    return metrics, stages, load_file(run_dir / "model.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("resume") / "full"
    assert _train(run_dir) == 0
    return run_dir


@pytest.mark.slow  # 6 runs of a 3-stage job: in .ci/run's slow phase, to keep the README suite under 15 min
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_killed_run_resumes_to_the_same_metrics_and_weights(uninterrupted, tmp_path, point):
    run_dir = tmp_path / "killed"
    assert _train(run_dir, KILL_POINTS[point], SPARSE.get(point)) == -9  # SIGKILL: no cleanup, no final files
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "model.safetensors").exists()
    if point == "checkpoint_write":  # the write killed half way left the previous checkpoint complete
        last = run_dir / "checkpoints" / "all" / "last.ckpt"
        assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 0  # the epoch before the write
    assert ENV not in os.environ  # the resumed run is not killed again
    proc = run_cli("resume", str(run_dir), cwd=tmp_path, env={"PYTHONPATH": str(REPO)}, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (run_dir / "train.log").read_text()
    assert "resume: continuing at step" in log
    if point in SPARSE:  # stage 2's only checkpoint would have been its last epoch's: back to stage 1's end
        assert "resume: continuing at step probe" in log, log
    full_metrics, full_stages, full_weights = _outcome(uninterrupted)
    metrics, stages, weights = _outcome(run_dir)
    assert metrics["final"] == full_metrics["final"]
    assert stages == full_stages
    assert metrics["epochs"] == full_metrics["epochs"]  # every epoch's losses, accuracies, LRs, trainable counts
    assert weights.keys() == full_weights.keys()
    assert all(torch.equal(weights[k], full_weights[k]) for k in weights), "weights differ after resume"
    assert metrics["selection"] == full_metrics["selection"]
    assert stages["all"]["epochs"] == 2 and stages["all"]["early_stop"][0]["rule"] == "plateau", stages["all"]
    assert stages["top"]["carried"]["ema"]["updates"] == 4  # 2 epochs × 2 batches (limit_train_batches=2)


# strategy=auto, unpinned: the resumed run chooses again from the same data and weights (the quick probe is a
# closed-form fit), here lp_ft (probe_good raised above the random small_cnn's 0.93), and its ridge head
AUTO_JOB = [
    *FAST_OWN_STRATEGY, "strategy=auto", "strategy.auto.probe_good=0.99", "+strategy.max_stage_epochs=2",
    "backbone=small_cnn", "backbone.weights=null", "data=digits", "data.shots_per_class=12", "data.image_size=16",
    "callbacks.checkpoint.last_min_interval_s=0", "+callbacks.extra.kill._target_=tests.run.killer.KillAt",
]  # fmt: skip


@pytest.mark.slow  # three small runs
def test_a_killed_auto_run_resumes_to_the_same_choice_metrics_and_weights(tmp_path):
    env = {"PYTHONPATH": str(REPO)}
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run_cli("train", *AUTO_JOB, f"hydra.run.dir={full}", cwd=tmp_path, env=env, check=False).returncode == 0
    proc = run_cli("train", *AUTO_JOB, f"hydra.run.dir={killed}", cwd=tmp_path, env=env | {ENV: "batch:finetune:1:0"},
                   check=False)  # fmt: skip
    assert proc.returncode == -9 and not (killed / "metrics.json").exists()
    proc = run_cli("resume", str(killed), cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (full_metrics, full_stages, full_weights), (metrics, stages, weights) = _outcome(full), _outcome(killed)
    timing = ("probe_seconds",)
    choice = {k: v for k, v in metrics["strategy_choice"]["inputs"].items() if k not in timing}
    assert choice == {k: v for k, v in full_metrics["strategy_choice"]["inputs"].items() if k not in timing}
    assert metrics["strategy_choice"]["recipe"] == full_metrics["strategy_choice"]["recipe"] == "lp_ft"
    assert "head_init" in stages["probe"] and stages == full_stages
    assert metrics["final"] == full_metrics["final"] and metrics["epochs"] == full_metrics["epochs"]
    assert all(torch.equal(weights[k], full_weights[k]) for k in full_weights), "weights differ after resume"


def test_resume_refuses_a_dir_without_checkpoints_and_a_finished_dir_is_kept(uninterrupted, tmp_path):
    proc = run_cli("resume", str(tmp_path), cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "not a transferlab run dir" in proc.stderr
    before = (uninterrupted / "metrics.json").read_bytes()
    proc = run_cli("resume", str(uninterrupted), cwd=tmp_path, env={"PYTHONPATH": str(REPO)}, check=False)
    assert proc.returncode == 0 and (uninterrupted / "metrics.json").read_bytes() == before


def test_a_fresh_run_into_a_finished_run_dir_is_refused_and_changes_nothing(uninterrupted, tmp_path):
    # everything but the logs (Hydra appends this attempt's error to the job log) stays byte for byte
    files = {p: p.read_bytes() for p in uninterrupted.rglob("*") if p.is_file() and p.suffix != ".log"}
    proc = run_cli("train", *JOB, f"hydra.run.dir={uninterrupted}", cwd=tmp_path,
                   env={"PYTHONPATH": str(REPO)}, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "already holds a finished run" in proc.stderr and "Traceback" not in proc.stderr
    assert {p: p.read_bytes() for p in files} == files
    assert not (uninterrupted / "failure.json").exists()


@pytest.mark.slow  # two 4-job sweeps and a pretraining run
def test_the_same_sweep_again_skips_finished_jobs_and_reruns_the_failed_one(tmp_path):
    sweep, weights = tmp_path / "sweep", tmp_path / "late.safetensors"
    command = ["train", "-m", *FAST, "backbone=small_cnn", "data=synthetic", "strategy=finetune",
               "strategy.stages.finetune.epochs=2", "callbacks=none", f"hydra.sweep.dir={sweep}",
               f"backbone.weights=null,{weights}", "seed=0,1"]  # fmt: skip
    first = run_cli(*command, cwd=tmp_path, check=False)
    assert first.returncode == 1 and "2 done, 2 failed" in first.stderr
    done = {job: (sweep / job / "metrics.json").stat().st_mtime_ns for job in ("0", "1")}
    # the missing file appears (e.g. a pretraining run finished): the same command again
    pretrain = tmp_path / "pretrain"
    tiny = ["backbone=small_cnn", "backbone.weights=null", "data=synthetic", "strategy=finetune", "callbacks=none"]
    run_cli("train", *FAST, *tiny, "strategy.stages.finetune.epochs=2", f"hydra.run.dir={pretrain}", cwd=tmp_path)
    (pretrain / "model.safetensors").rename(weights)
    second = run_cli(*command, cwd=tmp_path)
    assert "sweep finished: 4 jobs (4 done)" in second.stdout
    assert {job: (sweep / job / "metrics.json").stat().st_mtime_ns for job in ("0", "1")} == done  # not rerun
    for job in ("0", "1"):
        assert "skipped" in (sweep / job / "train.log").read_text()
    for job in ("2", "3"):
        assert (sweep / job / "metrics.json").is_file()
        assert not (sweep / job / "failure.json").exists()  # the old failure record is gone


def test_same_config_and_seed_give_identical_metrics_and_weights(uninterrupted, tmp_path):
    again = tmp_path / "again"
    assert _train(again) == 0
    full_metrics, full_stages, full_weights = _outcome(uninterrupted)
    metrics, stages, weights = _outcome(again)
    assert (metrics["final"], stages, metrics["epochs"]) == (full_metrics["final"], full_stages, full_metrics["epochs"])
    assert all(torch.equal(weights[k], full_weights[k]) for k in full_weights)


def test_last_checkpoint_waits_its_interval_but_always_writes_a_steps_last_epoch(tmp_path, monkeypatch):
    clock = iter(range(0, 1000, 10))  # every time.monotonic() call is 10 s after the previous one
    monkeypatch.setattr("transferlab.run.checkpoints.time.monotonic", lambda: next(clock))
    written: list[int] = []

    def epochs(interval: float, max_epochs: int, stop_at: int | None = None) -> list[int]:
        written.clear()
        callback = LastCheckpoint(tmp_path, interval)
        trainer = SimpleNamespace(sanity_checking=False, should_stop=False, max_epochs=max_epochs)
        trainer.save_checkpoint = lambda path: written.append(trainer.current_epoch)
        callback.on_train_start(trainer, None)
        for epoch in range(max_epochs):
            trainer.current_epoch, trainer.should_stop = epoch, epoch == stop_at
            callback.on_train_epoch_end(trainer, None)
            if trainer.should_stop:
                break
        return list(written)

    assert epochs(0, 4) == [0, 1, 2, 3], "0: every epoch"
    assert epochs(1000, 4) == [3], "a long interval: only the step's last epoch"
    assert epochs(25, 6) == [2, 5], "every third epoch at 10 s per epoch (30 s >= 25 s), and the last"
    assert epochs(1000, 6, stop_at=2) == [2], "an early stop is the step's last epoch"
