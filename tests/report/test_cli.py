"""``transferlab report`` on synthetic sweeps: files, numbers, plots, failures, exit statuses."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest
import yaml

from tests.report.conftest import ACC, write_job, write_multirun
from transferlab.cli.commands.report import main
from transferlab.report import read_plot_data


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def test_grid_sweep_report_files_hold_the_jobs_numbers(grid_sweep, capsys):
    main([str(grid_sweep)])
    out_dir = grid_sweep / "report"
    names = ["jobs.csv", "summary.csv", "report.md", "summary.png", "curves.png"]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(names)  # no temp files left

    jobs = _csv(out_dir / "jobs.csv")
    assert len(jobs) == 12 and {j["status"] for j in jobs} == {"done"}
    assert list(jobs[0])[:6] == ["dir", "job", "status", "strategy", "data.shots_per_class", "seed"]
    for row in jobs:
        acc = ACC[(row["strategy"], row["data.shots_per_class"])][int(row["seed"])]
        assert float(row["test/acc"]) == acc and float(row["seconds"]) == 10.0 + int(row["job"])

    summary = _csv(out_dir / "summary.csv")
    assert [(r["strategy"], r["data.shots_per_class"]) for r in summary] == list(ACC)  # a/5, a/20, a/null, b/...
    for row in summary:
        values = ACC[(row["strategy"], row["data.shots_per_class"])]
        assert row["n"] == row["test/acc_n"] == "2"
        assert float(row["test/acc_mean"]) == pytest.approx(statistics.fmean(values))
        assert float(row["test/acc_std"]) == pytest.approx(statistics.stdev(values))
        assert float(row["test/acc_min"]) == min(values) and float(row["test/acc_max"]) == max(values)
    assert "seed" not in summary[0] and "x" not in summary[0]

    md = (out_dir / "report.md").read_text()
    assert "Jobs: 12 done, 0 failed, 0 unfinished, 0 missing." in md
    assert "basic sweeper, 12 of 12 jobs present" in md
    assert "| strategy | data.shots_per_class | n | val/acc | test/acc | test/loss | seconds |" in md
    assert "| a | 5 | 2 | 0.5400 ± 0.0707 (2) | 0.5500 ± 0.0707 (2) | 0.4500 ± 0.0707 (2) | 10.5 ± 0.7 (2) |" in md
    best = "Best by val/acc (validation, higher is better): strategy=b, data.shots_per_class=null: 0.9500 ± 0.0141 (2)"
    assert best + "; its test/acc (reported, not used to choose): 0.9600 ± 0.0141 (2)" in md
    assert "![summary](summary.png)" in md and "![curves](curves.png)" in md

    stdout = capsys.readouterr().out
    assert "| b | null | 2 | 0.9500 ± 0.0141 (2) | 0.9600 ± 0.0141 (2)" in stdout
    for name in names:
        assert str(out_dir / name) in stdout


def test_summary_plot_is_metric_vs_numeric_key_with_a_line_per_category(grid_sweep):
    main([str(grid_sweep), "--out", str(grid_sweep.parent / "out")])
    data = read_plot_data(grid_sweep.parent / "out" / "summary.png")
    assert data["kind"] == "line" and data["x_key"] == "data.shots_per_class" and data["metric"] == "test/acc"
    assert [s["label"] for s in data["series"]] == ["strategy=a", "strategy=b"]
    for s in data["series"]:
        strategy = s["label"].split("=")[1]
        assert s["x"] == ["5", "20", "null"] and s["n"] == [2, 2, 2]
        assert s["mean"] == pytest.approx([statistics.fmean(ACC[(strategy, x)]) for x in s["x"]])
        assert s["std"] == pytest.approx([statistics.stdev(ACC[(strategy, x)]) for x in s["x"]])

    curves = read_plot_data(grid_sweep.parent / "out" / "curves.png")
    assert curves["metric"] == "val/acc" and len(curves["series"]) == 6
    first = curves["series"][0]
    assert first["label"] == "strategy=a, data.shots_per_class=5"
    assert first["epoch"] == [0, 1, 2] and first["stage_starts"] == [1] and first["n"] == [2, 2, 2]
    values = ACC[("a", "5")]
    assert first["mean"] == pytest.approx([statistics.fmean(values) / 2, statistics.fmean(values) - 0.1, 0.55])


def test_group_by_and_over_choose_the_grouping_and_a_bar_chart(grid_sweep):
    main([str(grid_sweep), "--group-by", "strategy", "--metric", "test/loss", "--out", str(grid_sweep / "by")])
    summary = _csv(grid_sweep / "by" / "summary.csv")
    assert [(r["strategy"], r["n"]) for r in summary] == [("a", "6"), ("b", "6")]
    data = read_plot_data(grid_sweep / "by" / "summary.png")
    assert data["kind"] == "bar" and data["series"][0]["x"] == ["a", "b"]
    for strategy, mean in zip("ab", data["series"][0]["mean"], strict=True):
        losses = [1.0 - acc for (s, _), accs in ACC.items() if s == strategy for acc in accs]
        assert mean == pytest.approx(statistics.fmean(losses))
    best = "Best by val/acc (validation, higher is better): strategy=a: 0.7067 ± 0.1520 (6)"
    best += "; its test/loss (reported, not used to choose): 0.2833 ± 0.1520 (6)"
    assert best in (grid_sweep / "by" / "report.md").read_text()

    main([str(grid_sweep), "--over", "seed,data.shots_per_class", "--out", str(grid_sweep / "over")])
    assert [r["strategy"] for r in _csv(grid_sweep / "over" / "summary.csv")] == ["a", "b"]


def test_failed_unfinished_and_missing_jobs_are_listed_and_strict_exits_1(tmp_path, capsys):
    sweep = write_multirun(tmp_path / "sweep", ["seed=0,1,2", "strategy=a,b"])
    for num, (seed, strategy) in enumerate([(0, "a"), (0, "b"), (1, "a"), (1, "b"), (2, "a")]):
        overrides = [f"seed={seed}", f"strategy={strategy}"]
        if num == 1:
            write_job(sweep / "1", overrides, failure={"error_type": "WeightsError", "message": "no such file w.pt"})
        elif num == 3:
            write_job(sweep / "3", overrides)
        else:
            write_job(sweep / str(num), overrides, final={"test/acc": 0.1 * (num + 1)})
    main([str(sweep)])
    stdout = capsys.readouterr().out
    assert "3 done, 1 failed, 1 unfinished, 1 missing" in stdout
    assert f"failed: {sweep / '1'} — WeightsError: no such file w.pt" in stdout
    assert f"unfinished: {sweep / '3'}" in stdout
    assert f"missing: {sweep} job 5 — not run: seed=2 strategy=b" in stdout

    md = (sweep / "report" / "report.md").read_text()
    assert "## Failed jobs" in md and f"- `{sweep / '1'}` (job 1): WeightsError: no such file w.pt" in md
    assert "## Unfinished jobs" in md and "## Missing jobs" in md and "job 5: not run: seed=2 strategy=b" in md
    jobs = _csv(sweep / "report" / "jobs.csv")
    assert [(j["job"], j["status"]) for j in jobs] == [
        ("0", "done"), ("1", "failed"), ("2", "done"), ("3", "unfinished"), ("4", "done"), ("5", "missing"),
    ]  # fmt: skip
    assert jobs[5]["seed"] == "2" and jobs[5]["strategy"] == "b" and jobs[1]["test/acc"] == ""

    assert _exit_code([str(sweep), "--strict"]) == 1
    assert "--strict: 3 job(s)" in capsys.readouterr().err


def test_a_single_run_is_one_row(tmp_path):
    run = write_job(tmp_path / "runs" / "2026-11-24_10-00-00", ["seed=3"], final={"test/acc": 0.75}, seconds=2.0)
    main([str(run)])
    (row,) = _csv(run / "report" / "summary.csv")
    assert row["n"] == "1" and float(row["test/acc_mean"]) == 0.75 and row["test/acc_std"] == ""
    assert next(iter(row)) == "n"
    md = (run / "report" / "report.md").read_text()
    assert "| 1 | 0.7500 (1) | 2.0 (1) |" in md and "Best by" not in md
    assert read_plot_data(run / "report" / "summary.png")["series"][0]["x"] == ["all"]
    assert not (run / "report" / "curves.png").exists()  # no epoch history, no curves


def test_optuna_best_params_are_in_the_report(tmp_path, capsys):
    sweep = tmp_path / "optuna"
    hydra = {"mode": "MULTIRUN", "job": {"num": 0}, "sweeper": {"_target_": "x.OptunaSweeper", "n_trials": 1}}
    write_job(sweep / "0", ["lr=0.01"], final={"test/acc": 0.5}, hydra=hydra)
    results = {"name": "optuna", "best_params": {"lr": 0.01}, "best_value": 0.5}
    (sweep / "optimization_results.yaml").write_text(yaml.safe_dump(results))
    main([str(sweep)])
    md = (sweep / "report" / "report.md").read_text()
    assert f"## Optuna: `{sweep}`" in md and "best_params: `{'lr': 0.01}`" in md and "best_value: `0.5`" in md
    assert "best 0.5 at {'lr': 0.01}" in capsys.readouterr().out


def test_user_errors_exit_2_naming_the_problem(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert _exit_code([str(missing)]) == 2
    assert f"{missing} does not exist" in capsys.readouterr().err
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert _exit_code([str(tmp_path / "empty")]) == 2
    assert f"no jobs found under {tmp_path / 'empty'}" in capsys.readouterr().err
    write_job(tmp_path / "run", ["seed=0"], final={"test/acc": 0.5})
    assert _exit_code([str(tmp_path / "run"), "--metric", "top5"]) == 2
    err = capsys.readouterr().err
    assert "--metric top5" in err and "test/acc" in err
    assert _exit_code([str(tmp_path / "run"), "--group-by", "no.such.key"]) == 2
    assert "--group-by no.such.key" in capsys.readouterr().err


def test_help_ends_with_examples(capsys):
    assert _exit_code(["--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and out.rstrip().splitlines()[-1].strip().startswith("transferlab report")


def test_a_key_only_some_jobs_set_is_default_elsewhere_and_escaped_in_markdown(tmp_path, capsys):
    write_job(tmp_path / "0", ["seed=0", "+tag=x"], final={"test/acc": 0.25})
    write_job(tmp_path / "1", ["seed=0"], final={"test/acc": 0.75})
    main([str(tmp_path)])
    assert [r["tag"] for r in _csv(tmp_path / "report" / "summary.csv")] == ["x", "<default>"]
    assert "| \\<default> | 1 | 0.7500 (1) |" in (tmp_path / "report" / "report.md").read_text()
    assert "| <default> | 1 | 0.7500 (1) |" in capsys.readouterr().out
