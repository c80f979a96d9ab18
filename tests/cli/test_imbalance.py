"""Imbalance from the command line: class weights, focal loss, the balanced sampler and the one monitored metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clitools import run_cli

JOB = ["backbone=small_cnn", "debug=fast", "strategy=finetune", "data.classes=[0,1,2]", "logger=none"]


def _train(tmp_path: Path, name: str, *extra: str, check: bool = True):
    run_dir = tmp_path / name
    proc = run_cli("train", *JOB, *extra, f"hydra.run.dir={run_dir}", cwd=tmp_path, check=check)
    return proc, run_dir


def _best_epoch(metrics: dict, monitor: str, mode: str) -> dict:
    rows = [r for r in metrics["epochs"] if r["stage"] == "finetune" and r.get(monitor) is not None]
    pick = max if mode == "max" else min
    return pick(rows, key=lambda r: r[monitor])


@pytest.mark.parametrize(
    ("extra", "monitor", "mode"),
    [
        pytest.param(
            ["task=balanced", "data.sampler=balanced", "optimized_metric=val/macro_f1"],
            "val/macro_f1",
            "max",
            marks=pytest.mark.slow,  # a real run: the in-process checks below stay in the main suite
        ),
        pytest.param(
            ["task=focal", "task.label_smoothing=0.1", "optimized_metric=val/loss"],
            "val/loss",
            "min",
            marks=pytest.mark.slow,
        ),
    ],
    ids=["weights+sampler+macro_f1", "focal+smoothing+loss"],
)
def test_the_monitored_metric_picks_the_best_epoch_and_is_what_the_run_reports(tmp_path, extra, monitor, mode):
    proc, run_dir = _train(tmp_path, "run", *extra, "strategy.max_stage_epochs=3")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["optimized_metric"] == monitor
    row = metrics["stages"]["finetune"]
    best = _best_epoch(metrics, monitor, mode)
    assert row[monitor] == best[monitor] and row["best_epoch"] == best["epoch"], (row, best)
    assert f"best {monitor}" in proc.stdout
    for split in ("val", "test"):
        assert {f"{split}/balanced_acc", f"{split}/macro_f1"} <= set(metrics["final"]), metrics["final"]
    config = (run_dir / "config.yaml").read_text()
    assert "class_weights: auto" in config or "loss: focal" in config


@pytest.mark.slow
def test_null_optimized_metric_is_the_tasks_own_and_is_written_resolved(tmp_path):
    _, run_dir = _train(tmp_path, "run")
    assert json.loads((run_dir / "metrics.json").read_text())["optimized_metric"] == "val/acc"


BAD = pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task.class_weights=[1,2]", "task.class_weights=[1.0, 2.0]: 2 weights for 3 classes (0, 1, 2)"),
        ("task.pos_weight=auto", "task.pos_weight='auto': weighs the positive term of each label of multi-label"),
        ("task.loss=bce", "task.loss=bce: data=digits has one label per image"),
        ("optimized_metric=val/map", "optimized_metric='val/map': this run records no such metric"),
        ("data.sampler=oversample", "data.sampler='oversample': choose one of shuffle, balanced"),
    ],
)


@BAD
def test_validate_reports_every_bad_task_option(override, message):
    from transferlab.config.compose import compose
    from transferlab.run.validation import validate_config

    report = validate_config(compose([*JOB, override]))
    text = " ".join(" ".join(p.message for p in report.problems).split())
    assert message in text, text


@pytest.mark.slow  # two subprocesses per case; the in-process test above covers every check in the main suite
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task.class_weights=[1,2]", "task.class_weights=[1.0, 2.0]: 2 weights for 3 classes (0, 1, 2)"),
        ("task.loss=bce", "task.loss=bce: data=digits has one label per image"),
    ],
)
def test_bad_task_options_stop_before_training_in_train_and_validate(tmp_path, override, message):
    proc, run_dir = _train(tmp_path, "bad", override, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in " ".join(proc.stderr.split()), proc.stderr
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.json").exists()
    checked = run_cli("validate", *JOB, override, cwd=tmp_path, check=False)
    assert checked.returncode != 0 and message in " ".join(checked.stdout.split() + checked.stderr.split())
