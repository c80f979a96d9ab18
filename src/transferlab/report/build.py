"""Building a report end to end: collect the jobs, group them, write the tables, the Markdown and the plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transferlab.config.run import is_test_metric
from transferlab.errors import TransferlabError
from transferlab.report.aggregate import (
    DEFAULT_SELECTION,
    HEADLINE,
    Group,
    group_jobs,
    job_selection_metric,
    key_known,
    metric_names,
    swept_keys,
)
from transferlab.report.collect import Collection, Job, collect
from transferlab.report.plots import curves_plot, summary_plot
from transferlab.report.render import (
    best_line,
    eval_lines,
    jobs_table,
    markdown_report,
    markdown_table,
    problem_lines,
    summary_table,
    write_csv,
    write_text_atomic,
)

REPORT_DIR = "report"


class ReportError(TransferlabError, ValueError):
    """The report cannot be made: a dir does not exist, holds no jobs, or a metric or key is unknown."""


@dataclass
class ReportOptions:
    """What to report and how (the ``transferlab report`` flags)."""

    dirs: Sequence[Path]
    out: Path | None = None  # default: <first dir>/report
    metric: str = HEADLINE  # headline metric: summary plot, shown beside the best group
    select_by: str | None = None  # validation metric that picks the best group; None: the runs' optimized_metric
    curve_metric: str = "val/acc"
    group_by: Sequence[str] | None = None  # default: the swept keys less `over`
    over: Sequence[str] = ("seed",)  # replicate keys pooled into mean ± std
    plots: bool = True
    command: str = "transferlab report"


@dataclass
class Report:
    """A written report: what was found, how it was grouped, and the files written."""

    collection: Collection
    keys: list[str]  # group keys
    groups: list[Group]
    metrics: list[str]
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    table: str = ""
    select: str = DEFAULT_SELECTION  # the validation metric the best group was chosen on
    best: str = ""
    problems: list[str] = field(default_factory=list)


def _check_dirs(dirs: Sequence[Path]) -> None:
    if not dirs:
        raise ReportError("no dir given. Fix: pass a run or sweep dir, e.g. outputs/train/multiruns/<time>.")
    for d in dirs:
        if not d.is_dir():
            what = "is not a directory" if d.exists() else "does not exist"
            raise ReportError(
                f"{d} {what}. Fix: pass a run dir (outputs/<task>/runs/<time>), a sweep dir "
                "(outputs/<task>/multiruns/<time>) or a dir above them."
            )


def selection_metric(requested: str | None, done: Sequence[Job]) -> str:
    """The validation metric that chooses the best group: ``requested``, else the runs' ``optimized_metric``.

    Raises:
        ReportError: For a test metric (choosing on test data biases the chosen group's test score upwards) or
            when the runs were optimised for different metrics and none was requested.
    """
    if requested is None:
        found = sorted({m for m in (job_selection_metric(j) for j in done) if m})
        if len(found) > 1:
            raise ReportError(
                f"the runs were optimised for different metrics ({', '.join(found)}): no single one can choose "
                f"the best group. Fix: pass --select-by {found[0]} (a validation metric)."
            )
        requested = found[0] if found else DEFAULT_SELECTION
    if is_test_metric(requested):
        raise ReportError(
            f"--select-by {requested}: a test metric cannot choose the best group (the chosen group's test score "
            f"would be biased upwards). Fix: --select-by val/acc (or another validation metric); {requested} is "
            "reported beside the choice."
        )
    return requested


def default_metrics(
    options: ReportOptions, select: str, metrics: Sequence[str], done: Sequence[Job]
) -> tuple[str, str]:
    """The headline and curve metrics: as asked, except that the defaults follow the selection metric.

    ``test/acc`` and ``val/acc`` are the defaults of single-label runs; runs that record neither (multi-label:
    ``val/map``) get the test counterpart of the selection metric (``test/map``) and the selection metric's own
    curve instead of an error.
    """
    headline, curve_metric = options.metric, options.curve_metric
    counterpart = "test/" + select.split("/", 1)[1] if select.startswith("val/") else None
    if headline == HEADLINE and headline not in metrics and counterpart in metrics:
        headline = counterpart
    rows = [row for j in done for row in (j.metrics or {}).get("epochs") or [] if isinstance(row, dict)]
    recorded = any(curve_metric in row for row in rows)
    if curve_metric == ReportOptions.curve_metric and not recorded:
        curve_metric = select
    return headline, curve_metric


def _group_keys(options: ReportOptions, collection: Collection) -> tuple[list[str], bool]:
    done = collection.by_status("done")
    if options.group_by is None:
        return [k for k in swept_keys(done) if k not in options.over], False
    keys = list(options.group_by)
    for key in keys:
        if not key_known(collection.jobs, key):
            swept = ", ".join(swept_keys(done)) or "none"
            raise ReportError(
                f"--group-by {key}: no job has this key in its overrides, config.yaml or metrics.json. "
                f"Fix: use a config key such as strategy.name or a swept key (swept: {swept})."
            )
    return keys, True


def build_report(options: ReportOptions) -> Report:
    """Collect, group and write ``jobs.csv``, ``summary.csv``, ``report.md``, ``summary.png``, ``curves.png``.

    The best group is chosen on a validation metric (:func:`selection_metric`), never on test data.

    Args:
        options: Dirs, output dir, metric and grouping choices.

    Returns:
        The report with the paths written.

    Raises:
        ReportError: A dir is missing, no job is found, or ``--metric``/``--group-by`` names nothing known.
    """
    dirs = [Path(d) for d in options.dirs]
    _check_dirs(dirs)
    collection = collect(dirs)
    if not collection.jobs and not collection.missing:
        names = ", ".join(str(d) for d in dirs)
        raise ReportError(
            f"no jobs found under {names}: no dir there holds metrics.json, failure.json or .hydra/. "
            "Fix: pass the dir a run or sweep wrote (outputs/<task>/runs/<time> or outputs/<task>/multiruns/<time>)."
        )
    done = collection.by_status("done")
    select = selection_metric(options.select_by, done)
    metrics = metric_names(done, first=[select])
    headline, curve_metric = default_metrics(options, select, metrics, done)
    if done and headline not in metrics:
        raise ReportError(f"--metric {headline}: not in the jobs' metrics. Fix: use one of {', '.join(metrics)}.")
    if done and options.select_by is not None and select not in metrics:
        valid = ", ".join(m for m in metrics if not is_test_metric(m) and m != "seconds") or "none"
        raise ReportError(
            f"--select-by {select}: no finished job recorded this validation metric (validation metrics: {valid}). "
            "Fix: pass --select-by with one of them."
        )
    keys, fallback = _group_keys(options, collection)
    groups = group_jobs(done, keys, metrics, fallback=fallback)
    out_dir = options.out or dirs[0] / REPORT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report(collection, keys, groups, metrics, out_dir)
    all_keys = keys + [k for k in swept_keys(collection.jobs) if k not in keys]
    report.files.append(write_csv(out_dir / "jobs.csv", *jobs_table(collection, all_keys, metrics, fallback)))
    report.files.append(write_csv(out_dir / "summary.csv", *summary_table(groups, keys, metrics)))
    plots = []
    if options.plots:
        plots = [
            p
            for p in (
                summary_plot(groups, keys, headline, out_dir / "summary.png"),
                curves_plot(groups, keys, curve_metric, out_dir / "curves.png"),
            )
            if p is not None
        ]
    replicate = [k for k in options.over if any(k in j.values for j in done)] if options.group_by is None else []
    evals = eval_lines(done, out_dir)
    text = markdown_report(
        collection, options.command, keys, replicate, groups, metrics, select, headline, plots, evals
    )
    report.files.append(write_text_atomic(out_dir / "report.md", text))
    report.files += plots
    report.table = markdown_table(groups, keys, metrics, html=False) if groups else ""
    report.select = select
    report.best = best_line(groups, keys, select, headline)
    report.problems = problem_lines(collection)
    return report
