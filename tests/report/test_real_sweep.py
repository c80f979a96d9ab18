"""A real (tiny) multirun with a failing job, reported by the real command line."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys

import pytest

from tests.clitools import FAST_OWN_STRATEGY, run_cli
from transferlab.report import read_plot_data

MISSING = "/nonexistent/weights.safetensors"
TINY = [
    "backbone=small_cnn",
    "data=synthetic",
    "strategy=finetune",
    "strategy.stages.finetune.epochs=2",
    "callbacks=none",
    "logger=none",
    "export=false",
    "trainer.limit_test_batches=1",
    *FAST_OWN_STRATEGY,  # TINY names its strategy
]


@pytest.mark.slow  # a real subprocess run: in CI's slow phase, keeping the README suite under 15 min
def test_report_of_a_real_sweep_equals_each_jobs_metrics(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli("train", "-m", *TINY, f"hydra.sweep.dir={sweep}", f"backbone.weights=null,{MISSING}", "seed=0,1",
            cwd=tmp_path, check=False)  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "transferlab.cli.commands.report", str(sweep)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 done, 2 failed, 0 unfinished, 0 missing" in proc.stdout, proc.stdout
    assert "WeightsError" in proc.stdout

    metrics = {n: json.loads((sweep / str(n) / "metrics.json").read_text()) for n in (0, 1)}
    with (sweep / "report" / "jobs.csv").open() as f:
        jobs = {int(row["job"]): row for row in csv.DictReader(f)}
    assert [jobs[n]["status"] for n in range(4)] == ["done", "done", "failed", "failed"]
    for n, m in metrics.items():
        for key, value in m["final"].items():
            assert float(jobs[n][key]) == pytest.approx(value, rel=1e-12), key
        assert float(jobs[n]["seconds"]) == m["seconds"]
    assert MISSING in jobs[2]["error"] and jobs[2]["backbone.weights"] == MISSING

    accs = [m["final"]["test/acc"] for m in metrics.values()]
    with (sweep / "report" / "summary.csv").open() as f:
        (row,) = list(csv.DictReader(f))  # seed is a replicate: one group of the two done jobs
    assert row["n"] == "2" and float(row["test/acc_mean"]) == pytest.approx(statistics.fmean(accs))
    assert float(row["test/acc_std"]) == pytest.approx(statistics.stdev(accs))
    plotted = read_plot_data(sweep / "report" / "summary.png")["series"][0]
    assert plotted["mean"] == pytest.approx([statistics.fmean(accs)]) and plotted["n"] == [2]
    curves = read_plot_data(sweep / "report" / "curves.png")["series"][0]
    per_epoch = [statistics.fmean(e["val/acc"] for e in (m["epochs"][i] for m in metrics.values())) for i in (0, 1)]
    assert curves["epoch"] == [0, 1] and curves["mean"] == pytest.approx(per_epoch)
