"""Grouping finished jobs by their swept keys and summarising each metric as mean, sample std, min and max.

Swept keys are the override keys whose values differ across the done jobs (a key some jobs lack counts as
``<default>`` there). Groups are the unique combinations of the swept keys less the replicate keys (default
``seed``), or of the ``--group-by`` keys. Every numeric ``final`` metric of ``metrics.json`` is reported
(the selection metric first, then ``test/acc``), then ``seconds``. The best group is chosen on a validation
metric only (the runs' ``optimized_metric``): choosing on the test set would bias the chosen group's test score
upwards; its test score is reported beside the choice. ``std`` is the sample standard deviation (n − 1) and is
``None`` for a group of one; non-finite values (a diverged loss) are left out of a metric's statistics.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from transferlab.report.collect import DEFAULT, Job

HEADLINE = "test/acc"
DEFAULT_SELECTION = "val/acc"
_LOWER_IS_BETTER = ("loss", "err", "seconds", "time")


@dataclass
class Stats:
    """Statistics of one metric over one group's jobs."""

    n: int
    mean: float | None
    std: float | None  # sample std; None for n < 2
    min: float | None
    max: float | None


@dataclass
class Group:
    """Jobs sharing the values of the group keys, and the statistics of every metric over them."""

    values: tuple[str, ...]
    jobs: list[Job]
    stats: dict[str, Stats]

    def label(self, keys: Sequence[str]) -> str:
        """``key=value, ...`` (``all`` when there are no group keys)."""
        return ", ".join(f"{k}={v}" for k, v in zip(keys, self.values, strict=True)) or "all"


def is_number(value: Any) -> bool:
    """A real int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _to_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def sort_key(value: str) -> tuple[int, float, str]:
    """Numeric-aware order of override values: numbers ascending, then text, then ``null``, then ``<default>``."""
    number = _to_float(value)
    if number is not None:
        return (0, number, "")
    if value == "null":
        return (2, 0.0, "")
    if value == DEFAULT:
        return (3, 0.0, "")
    return (1, 0.0, value)


def is_numeric_key(values: Iterable[str]) -> bool:
    """Whether a key's values are numbers (``null`` and ``<default>`` allowed beside them)."""
    values = [v for v in values if v not in ("null", DEFAULT)]
    return bool(values) and all(_to_float(v) is not None for v in values)


def swept_keys(jobs: Sequence[Job]) -> list[str]:
    """Override keys whose values differ across ``jobs``, in the order they first appear."""
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job.values if k not in keys]
    return [k for k in keys if len({job.values.get(k, DEFAULT) for job in jobs}) > 1]


_ABSENT = object()


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return _ABSENT
        data = data[part]
    return data


def _render(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_render(v) for v in value) + "]"
    return str(value)


def job_value(job: Job, key: str, fallback: bool = False) -> str:
    """The value of ``key`` for ``job``: its override, else ``<default>``.

    With ``fallback``, a key the job has no override for is looked up in its resolved config, then among the
    top-level ``metrics.json`` fields (``backbone``, ``strategy``), before ``<default>``.
    """
    if key in job.values:
        return job.values[key]
    if fallback:
        for source in (job.config(), job.metrics or {}):
            value = _lookup(source, key)
            if value is not _ABSENT and not isinstance(value, dict):
                return _render(value)
    return DEFAULT


def key_known(jobs: Sequence[Job], key: str) -> bool:
    """Whether any job has ``key`` as an override, in its resolved config or in ``metrics.json``."""
    return any(job_value(j, key, fallback=True) != DEFAULT for j in jobs)


def job_selection_metric(job: Job) -> str | None:
    """The metric a job was optimised for: ``optimized_metric`` of its ``metrics.json``, else of its config."""
    for source in (job.metrics or {}, job.config()):
        name = source.get("optimized_metric") if isinstance(source, dict) else None
        if isinstance(name, str) and name:
            return name
    return None


def _last_stage(job: Job) -> dict[str, Any]:
    stages = (job.metrics or {}).get("stages")
    if isinstance(stages, dict) and stages:
        last = list(stages.values())[-1]
        return last if isinstance(last, dict) else {}
    return {}


def metric_names(jobs: Sequence[Job], first: Sequence[str] = ()) -> list[str]:
    """Every numeric ``final`` metric of the jobs, ``first`` (and then ``test/acc``) leading, ``seconds`` last.

    A name of ``first`` that is not in ``final`` but in the jobs' last stage rows (``val/loss`` of runs written
    before ``final`` held it) is included too.
    """
    names: list[str] = []
    for job in jobs:
        final = (job.metrics or {}).get("final")
        if isinstance(final, dict):
            names += [k for k, v in final.items() if is_number(v) and k not in names]
    lead = list(dict.fromkeys([*first, HEADLINE]))
    for name in lead:
        if name not in names and any(metric_value(j, name) is not None for j in jobs):
            names.append(name)
    names = [n for n in lead if n in names] + [n for n in names if n not in lead]
    if any(is_number((j.metrics or {}).get("seconds")) for j in jobs):
        names.append("seconds")
    return names


def metric_value(job: Job, name: str) -> float | None:
    """A job's value of metric ``name``, ``None`` if absent or not finite.

    ``seconds`` is the run's wall time; any other name is looked up in ``final``, then (validation metrics of
    older runs) in the last stage's row.
    """
    metrics = job.metrics or {}
    final = metrics.get("final") if isinstance(metrics.get("final"), dict) else {}
    value = metrics.get(name) if name == "seconds" else final.get(name, _last_stage(job).get(name))
    return float(value) if is_number(value) and math.isfinite(value) else None


def stats(values: Sequence[float]) -> Stats:
    """Mean, sample std (``None`` for fewer than 2 values), min and max."""
    if not values:
        return Stats(0, None, None, None, None)
    std = statistics.stdev(values) if len(values) > 1 else None
    return Stats(len(values), statistics.fmean(values), std, min(values), max(values))


def group_jobs(jobs: Sequence[Job], keys: Sequence[str], metrics: Sequence[str], fallback: bool = False) -> list[Group]:
    """Group ``jobs`` by the values of ``keys`` and compute every metric's statistics, sorted by the keys.

    Args:
        jobs: Done jobs.
        keys: Group keys (override keys; with ``fallback`` also config keys).
        metrics: Metric names (see :func:`metric_names`).
        fallback: Look keys up in the resolved config when a job has no override for them.

    Returns:
        Groups in numeric-aware order of their key values.
    """
    members: dict[tuple[str, ...], list[Job]] = {}
    for job in jobs:
        members.setdefault(tuple(job_value(job, k, fallback) for k in keys), []).append(job)
    groups = []
    for values in sorted(members, key=lambda vs: [sort_key(v) for v in vs]):
        group_members = members[values]
        per_metric = {}
        for name in metrics:
            found = [metric_value(j, name) for j in group_members]
            per_metric[name] = stats([v for v in found if v is not None])
        groups.append(Group(values, group_members, per_metric))
    return groups


def lower_is_better(metric: str) -> bool:
    """Losses, errors and times are minimised; everything else (accuracies) maximised."""
    return any(word in metric.lower() for word in _LOWER_IS_BETTER)


def best_group(groups: Sequence[Group], metric: str) -> Group | None:
    """The group with the best mean of ``metric`` (highest, or lowest for losses/times); ``None`` if no values.

    Callers pass a validation metric (see :func:`is_test_metric`): the report never chooses on test data.
    """
    tied = best_groups(groups, metric)
    return tied[0] if tied else None


#: Means closer than this are a tie (the same number of correct validation samples, summed in another order).
TIE = 1e-9


def best_groups(groups: Sequence[Group], metric: str) -> list[Group]:
    """The groups whose mean of ``metric`` is the best, in group order (more than one on a tie)."""
    scored = [g for g in groups if metric in g.stats and g.stats[metric].mean is not None]
    if not scored:
        return []
    sign = 1.0 if lower_is_better(metric) else -1.0
    top = min(sign * g.stats[metric].mean for g in scored)  # type: ignore[operator]
    return [g for g in scored if sign * g.stats[metric].mean - top <= TIE]  # type: ignore[operator]


def curve(jobs: Sequence[Job], metric: str) -> tuple[list[int], list[float], list[int], list[int]]:
    """Mean of an ``epochs`` metric per epoch over ``jobs``, and the epochs where a new stage starts.

    Returns:
        ``(epochs, means, counts, stage_starts)``: epochs having a value in at least one job, the mean over
        the jobs that have it, how many jobs that is, and the first epoch of every stage after the first.
    """
    per_epoch: dict[int, list[float]] = {}
    starts: set[int] = set()
    for job in jobs:
        rows = (job.metrics or {}).get("epochs")
        previous = None
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or not is_number(row.get("epoch")):
                continue
            epoch = int(row["epoch"])
            if previous is not None and row.get("stage") != previous:
                starts.add(epoch)
            previous = row.get("stage")
            value = row.get(metric)
            if is_number(value) and math.isfinite(value):
                per_epoch.setdefault(epoch, []).append(float(value))
    epochs = sorted(per_epoch)
    return epochs, [statistics.fmean(per_epoch[e]) for e in epochs], [len(per_epoch[e]) for e in epochs], sorted(starts)
