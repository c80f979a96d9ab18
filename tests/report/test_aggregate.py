"""Swept keys, grouping, mean ± sample std, numeric-aware order, best group, learning curves."""

from __future__ import annotations

import statistics

import pytest

from tests.report.conftest import ACC, curve_rows, write_job
from transferlab.report.aggregate import (
    best_group,
    curve,
    group_jobs,
    metric_names,
    sort_key,
    stats,
    swept_keys,
)
from transferlab.report.collect import Job, collect


def test_swept_keys_differ_across_done_jobs_and_absent_keys_count_as_default(grid_sweep, tmp_path):
    done = collect([grid_sweep]).by_status("done")
    assert swept_keys(done) == ["strategy", "data.shots_per_class", "seed"]  # x=1 everywhere: not swept
    extra = write_job(tmp_path / "extra", ["strategy=a", "data.shots_per_class=5", "seed=0", "x=1", "+tag=t"], {})
    with_extra = [*done, collect([extra]).jobs[0]]
    assert swept_keys(with_extra) == ["strategy", "data.shots_per_class", "seed", "tag"]


def test_groups_pool_seeds_into_mean_and_sample_std(grid_sweep):
    done = collect([grid_sweep]).by_status("done")
    groups = group_jobs(done, ["strategy", "data.shots_per_class"], metric_names(done))
    assert [g.values for g in groups] == [
        ("a", "5"), ("a", "20"), ("a", "null"), ("b", "5"), ("b", "20"), ("b", "null"),
    ]  # fmt: skip
    for g in groups:
        values = ACC[g.values]
        s = g.stats["test/acc"]
        assert len(g.jobs) == s.n == 2
        assert s.mean == pytest.approx(sum(values) / 2)
        assert s.std == pytest.approx(abs(values[0] - values[1]) / 2**0.5)  # sample std of two values
        assert (s.min, s.max) == (min(values), max(values))
    a5 = groups[0].stats["seconds"]
    assert a5.mean == pytest.approx(10.5) and a5.std == pytest.approx(statistics.stdev([10.0, 11.0]))


def test_stats_of_one_value_have_no_std_and_of_none_no_mean():
    assert stats([0.25]).std is None and stats([0.25]).mean == 0.25
    assert stats([]).n == 0 and stats([]).mean is None
    three = stats([0.5, 0.7, 0.9])
    assert three.mean == pytest.approx(0.7) and three.std == pytest.approx(0.2)


def test_sort_is_numeric_aware_with_text_then_null_then_default():
    values = ["<default>", "null", "100", "b", "20", "5", "1e-3", "a"]
    assert sorted(values, key=sort_key) == ["1e-3", "5", "20", "100", "a", "b", "null", "<default>"]


def test_metric_names_put_test_acc_first_and_seconds_last(tmp_path):
    jobs = [
        Job(tmp_path, "done", metrics={"final": {"test/loss": 1.0, "test/t1/acc": 0.3, "test/acc": 0.5, "s": "x"}}),
        Job(tmp_path, "done", metrics={"final": {"val/acc": 0.4}, "seconds": 3.0}),
    ]
    assert metric_names(jobs) == ["test/acc", "test/loss", "test/t1/acc", "val/acc", "seconds"]


def test_old_jobs_missing_keys_do_not_break_grouping(tmp_path):
    jobs = [
        Job(tmp_path, "done", values={"seed": "0"}, metrics={}),
        Job(tmp_path, "done", values={"seed": "1"}, metrics={"final": None, "epochs": None}),
        Job(tmp_path, "done", values={"seed": "2"}, metrics={"final": {"test/acc": 0.6, "test/loss": float("nan")}}),
    ]
    names = metric_names(jobs)
    (group,) = group_jobs(jobs, [], names)
    assert group.stats["test/acc"].n == 1 and group.stats["test/acc"].mean == 0.6
    assert group.stats["test/loss"].n == 0  # NaN is left out
    assert curve(jobs, "val/acc") == ([], [], [], [])


def test_best_group_maximises_accuracy_and_minimises_loss(grid_sweep):
    done = collect([grid_sweep]).by_status("done")
    groups = group_jobs(done, ["strategy", "data.shots_per_class"], metric_names(done))
    assert best_group(groups, "test/acc").values == ("b", "null")
    assert best_group(groups, "test/loss").values == ("b", "null")
    assert best_group(groups, "seconds").values == ("a", "5")


def test_curve_means_per_epoch_and_stage_starts(tmp_path):
    stages = ["probe", "probe", "finetune"]
    jobs = [
        Job(tmp_path, "done", metrics={"epochs": curve_rows([0.1, 0.2, 0.3], stages)}),
        Job(tmp_path, "done", metrics={"epochs": curve_rows([0.3, 0.4], stages[:2])}),
    ]
    epochs, means, counts, starts = curve(jobs, "val/acc")
    assert epochs == [0, 1, 2] and counts == [2, 2, 1] and starts == [2]
    assert means == pytest.approx([0.2, 0.3, 0.3])
