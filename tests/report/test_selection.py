"""The report chooses on validation data, never on test data (the leakage tests of the report)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.report.conftest import write_job, write_multirun
from transferlab.cli.commands.report import main
from transferlab.config.run import is_test_metric
from transferlab.report import ReportError, ReportOptions, build_report


def _sweep(tmp_path, finals: dict[str, dict[str, float]], optimized: dict[str, str] | None = None):
    """A basic sweep over ``strategy`` with one job per strategy and the given ``final`` metrics."""
    sweep = write_multirun(tmp_path / "sweep", ["strategy=" + ",".join(finals)])
    for num, (strategy, final) in enumerate(finals.items()):
        job = write_job(sweep / str(num), [f"strategy={strategy}"], final=final)
        if optimized:
            (job / "config.yaml").write_text(yaml.safe_dump({"optimized_metric": optimized[strategy]}))
    return sweep


def test_the_higher_test_score_with_the_lower_val_score_is_not_chosen(tmp_path):
    sweep = _sweep(
        tmp_path,
        {
            "leaky": {"test/acc": 0.95, "val/acc": 0.80},  # best on test, worse on validation
            "honest": {"test/acc": 0.90, "val/acc": 0.85},
        },
    )
    report = build_report(ReportOptions(dirs=[sweep], plots=False))
    assert report.select == "val/acc"
    assert report.best.startswith("Best by val/acc (validation, higher is better): strategy=honest: 0.8500 (1)")
    assert report.best.endswith("its test/acc (reported, not used to choose): 0.9000 (1)")
    assert "strategy=leaky" not in report.best
    assert report.best in (sweep / "report" / "report.md").read_text()
    # the selection metric leads the table, the test metric follows it
    assert report.metrics[:2] == ["val/acc", "test/acc"]


def test_the_runs_optimized_metric_chooses_and_a_loss_is_minimised(tmp_path):
    finals = {
        "a": {"test/acc": 0.99, "val/acc": 0.90, "val/loss": 0.50},
        "b": {"test/acc": 0.80, "val/acc": 0.85, "val/loss": 0.30},
    }
    sweep = _sweep(tmp_path, finals, optimized={"a": "val/loss", "b": "val/loss"})
    report = build_report(ReportOptions(dirs=[sweep], plots=False))
    assert report.select == "val/loss"
    assert report.best.startswith("Best by val/loss (validation, lower is better): strategy=b: 0.3000 (1)")
    # --select-by overrides the runs' metric
    report = build_report(ReportOptions(dirs=[sweep], plots=False, select_by="val/acc"))
    assert "strategy=a: 0.9000 (1)" in report.best


def test_val_metrics_of_older_runs_are_read_from_the_last_stage_row(tmp_path):
    sweep = _sweep(
        tmp_path, {"a": {"test/acc": 0.9}, "b": {"test/acc": 0.8}}, optimized={"a": "val/loss", "b": "val/loss"}
    )
    for num, loss in ((0, 0.7), (1, 0.2)):
        metrics_file = sweep / str(num) / "metrics.json"
        data = json.loads(metrics_file.read_text())
        data["stages"] = {"probe": {"val/loss": 9.0}, "finetune": {"val/loss": loss}}
        metrics_file.write_text(json.dumps(data))
    report = build_report(ReportOptions(dirs=[sweep], plots=False))
    assert report.best.startswith("Best by val/loss (validation, lower is better): strategy=b: 0.2000 (1)")


@pytest.mark.parametrize("name", ["test/acc", "test/loss", "hparams/test_acc", "test/digits/acc"])
def test_a_test_metric_is_refused_as_the_selection_metric(tmp_path, capsys, name):
    assert is_test_metric(name)
    sweep = _sweep(tmp_path, {"a": {"test/acc": 0.9, "val/acc": 0.8}, "b": {"test/acc": 0.8, "val/acc": 0.9}})
    with pytest.raises(SystemExit) as exit_info:
        main([str(sweep), "--select-by", name, "--no-plots"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert (
        f"--select-by {name}: a test metric cannot choose the best group" in err and "Fix: --select-by val/acc" in err
    )
    assert not (sweep / "report").exists()


def test_runs_optimised_for_different_metrics_need_select_by(tmp_path):
    finals = {"a": {"test/acc": 0.9, "val/acc": 0.8, "val/loss": 0.1}, "b": {"test/acc": 0.8, "val/acc": 0.9}}
    sweep = _sweep(tmp_path, finals, optimized={"a": "val/loss", "b": "val/acc"})
    with pytest.raises(
        ReportError, match=r"optimised for different metrics \(val/acc, val/loss\).*--select-by val/acc"
    ):
        build_report(ReportOptions(dirs=[sweep], plots=False))
    with pytest.raises(ReportError, match="--select-by val/f1: no finished job recorded this validation metric"):
        build_report(ReportOptions(dirs=[sweep], plots=False, select_by="val/f1"))


def test_a_run_cannot_optimise_a_test_metric():
    from transferlab.config.run import parse_run_options
    from transferlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"optimized_metric='test/acc': a sweeper optimising a test metric"):
        parse_run_options({"optimized_metric": "test/acc"})
    assert not is_test_metric("val/acc") and not is_test_metric("val/contest_score")


def test_a_tie_on_validation_is_reported_as_a_tie_not_broken_by_test(tmp_path):
    finals = {"a": {"test/acc": 0.80, "val/acc": 0.9}, "b": {"test/acc": 0.99, "val/acc": 0.9}}
    report = build_report(ReportOptions(dirs=[_sweep(tmp_path, finals)], plots=False))
    assert report.best.startswith("Best by val/acc (validation, higher is better): strategy=a: 0.9000 (1) (tied with")
    assert "(tied with strategy=b)" in report.best
