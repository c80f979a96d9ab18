"""Writing the report: ``jobs.csv``, ``summary.csv`` and ``report.md`` (atomically: temp file, then rename)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transferlab.report.aggregate import Group, Stats, best_groups, job_value, lower_is_better, metric_value
from transferlab.report.collect import DEFAULT, Collection, Job, Missing, parse_overrides
from transferlab.rundir.layout import INTERPRETATION_FILE, TOP_LOSSES_FILE, eval_dirs

STAT_FIELDS = ("mean", "std", "min", "max", "n")


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temp file and rename it over ``path`` so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buffer.getvalue()


def jobs_table(
    collection: Collection, keys: Sequence[str], metrics: Sequence[str], fallback: bool = False
) -> tuple[list[str], list[list]]:
    """One row per job (done, failed, unfinished, then missing): dir, job number, status, keys, metrics, error."""
    header = ["dir", "job", "status", *keys, *metrics, "error"]
    rows: list[list] = []
    for job in collection.jobs:
        values = [job_value(job, k, fallback) for k in keys]
        rows.append([str(job.dir), job.num, job.status, *values, *[metric_value(job, m) for m in metrics], job.error])
    for miss in collection.missing:
        parsed = parse_overrides(miss.overrides) if miss.overrides is not None else {}
        values = [parsed.get(k, DEFAULT) if miss.overrides is not None else "" for k in keys]
        rows.append([str(miss.sweep_dir), miss.num, "missing", *values, *[None] * len(metrics), _missing_text(miss)])
    return header, rows


def summary_table(groups: Sequence[Group], keys: Sequence[str], metrics: Sequence[str]) -> tuple[list[str], list[list]]:
    """One row per group: the group keys, ``n`` (jobs), then ``<metric>_mean/_std/_min/_max/_n`` per metric."""
    header = [*keys, "n", *[f"{m}_{f}" for m in metrics for f in STAT_FIELDS]]
    rows = []
    for g in groups:
        cells = [getattr(g.stats[m], f) for m in metrics for f in STAT_FIELDS]
        rows.append([*g.values, len(g.jobs), *cells])
    return header, rows


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """Write a CSV file atomically (empty cells for ``None``)."""
    return write_text_atomic(path, _csv_text(header, rows))


def fmt(metric: str, value: float | None) -> str:
    """4 decimals, or 1 for times."""
    if value is None:
        return "–"
    return f"{value:.1f}" if metric == "seconds" or metric.endswith("seconds") else f"{value:.4f}"


def cell(metric: str, s: Stats) -> str:
    """``mean ± std (n)``; ``mean (1)`` for a single job; ``–`` without values."""
    if s.mean is None:
        return "–"
    spread = f" ± {fmt(metric, s.std)}" if s.std is not None else ""
    return f"{fmt(metric, s.mean)}{spread} ({s.n})"


def _md(text: Any, html: bool = True) -> str:
    """One line, ``|`` escaped; with ``html``, ``<`` too (a renderer would drop ``<default>`` as a tag)."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text.replace("<", "\\<") if html else text


def markdown_table(groups: Sequence[Group], keys: Sequence[str], metrics: Sequence[str], html: bool = True) -> str:
    """The grouped table: group keys, ``n``, then ``mean ± std (n)`` per metric (``html=False``: for a terminal)."""
    header = [*keys, "n", *metrics]
    lines = ["| " + " | ".join(_md(h, html) for h in header) + " |", "|" + "---|" * len(header)]
    for g in groups:
        row = [*g.values, str(len(g.jobs)), *[cell(m, g.stats[m]) for m in metrics]]
        lines.append("| " + " | ".join(_md(c, html) for c in row) + " |")
    return "\n".join(lines)


def best_line(groups: Sequence[Group], keys: Sequence[str], select: str, report: str | None = None) -> str:
    """The best group by the validation metric ``select``, with its score on ``report`` beside it.

    ``Best by val/acc (validation, higher is better): <group>: mean ± std (n); its test/acc: mean ± std (n)``, or
    an empty string for fewer than two groups. ``report`` (the test metric) is shown, never used to choose.
    """
    tied = best_groups(groups, select)
    if not tied or len(groups) < 2:
        return ""
    best = tied[0]
    direction = "lower" if lower_is_better(select) else "higher"
    score = cell(select, best.stats[select])
    line = f"Best by {select} (validation, {direction} is better): {best.label(keys)}: {score}"
    if len(tied) > 1:  # the same number of correct validation samples: the test score must not break the tie
        line += f" (tied with {'; '.join(g.label(keys) for g in tied[1:])})"
    if report and report != select and report in best.stats:
        line += f"; its {report} (reported, not used to choose): {cell(report, best.stats[report])}"
    return line


def _missing_text(miss: Missing) -> str:
    if miss.overrides is None:
        return "not run (the sweeper picks its overrides)"
    return "not run: " + " ".join(miss.overrides)


def problem_lines(collection: Collection) -> list[str]:
    """One line per failed, unfinished or missing job: status, dir or sweep/job number, error or overrides."""
    lines = []
    for job in collection.jobs:
        if job.status != "done":
            lines.append(f"{job.status}: {job.dir}" + (f" — {_md(job.error, html=False)}" if job.error else ""))
    for miss in collection.missing:
        lines.append(f"missing: {miss.sweep_dir} job {miss.num} — {_missing_text(miss)}")
    return lines


def counts_line(collection: Collection) -> str:
    """``N done, N failed, N unfinished, N missing``."""
    done, failed, unfinished = (len(collection.by_status(s)) for s in ("done", "failed", "unfinished"))
    return f"{done} done, {failed} failed, {unfinished} unfinished, {len(collection.missing)} missing"


def _job_list(jobs: Sequence[Job]) -> list[str]:
    return [
        f"- `{j.dir}`" + (f" (job {j.num})" if j.num is not None else "") + f": {_md(j.error) or '-'}" for j in jobs
    ]


def eval_lines(jobs: Sequence[Job], out_dir: Path) -> list[str]:
    """One Markdown line per evaluation of a job (``transferlab eval``): its gallery and ``interpretation.json``.

    Links are relative to ``out_dir`` (where ``report.md`` is), so the report and the runs can move together.
    """
    lines = []
    for job in jobs:
        for folder in eval_dirs(job.dir):
            links = [
                f"[{name}]({Path(os.path.relpath(folder / name, out_dir)).as_posix()})"
                for name in (TOP_LOSSES_FILE, INTERPRETATION_FILE)
                if (folder / name).is_file()
            ]
            number = f" (job {job.num})" if job.num is not None else ""
            lines.append(f"- `{job.dir}`{number}, eval `{_md(folder.name)}`: " + " · ".join(links))
    return lines


def markdown_report(
    collection: Collection,
    command: str,
    keys: Sequence[str],
    replicate_keys: Sequence[str],
    groups: Sequence[Group],
    metrics: Sequence[str],
    select: str,
    headline: str,
    plots: Sequence[Path],
    evals: Sequence[str] = (),
) -> str:
    """The whole ``report.md``: command, counts, sweeps, grouped table, best group, problems, Optuna, plots.

    ``evals`` (:func:`eval_lines`) add a section linking each run's error analysis, when a run has one.

    The best group is chosen on the validation metric ``select``; the ``headline`` (test) metric is shown beside it.
    """
    out = ["# transferlab report", "", f"Command: `{command}`", "", f"Jobs: {counts_line(collection)}.", ""]
    if collection.sweeps:
        out += ["## Sweeps", ""]
        for sweep in collection.sweeps:
            expected = "?" if sweep.expected is None else str(sweep.expected)
            text = f"- `{sweep.dir}`: {sweep.sweeper} sweeper, {sweep.present} of {expected} jobs present"
            text += f" ({sweep.note})" if sweep.note else ""
            text += f"; overrides: `{' '.join(sweep.overrides)}`" if sweep.overrides else ""
            out.append(text)
        out.append("")
    if groups:
        over = ", ".join(replicate_keys) or "the jobs of each group"
        grouped = ", ".join(keys) or "nothing (one group)"
        out += ["## Results", "", f"Grouped by {grouped}; mean ± sample std (n jobs) over {over}.", ""]
        out += [markdown_table(groups, keys, metrics), ""]
        best = best_line(groups, keys, select, headline)
        out += [_md(best), ""] if best else []
    else:
        out += ["## Results", "", "No job finished.", ""]
    for sweep in collection.sweeps:
        if sweep.optuna:
            out += [f"## Optuna: `{sweep.dir}`", ""]
            for name in ("best_value", "best_params", "solutions"):
                if name in sweep.optuna:
                    out.append(f"- {name}: `{_md(sweep.optuna[name])}`")
            out.append("")
    for status, title in (
        ("failed", "Failed jobs"),
        ("unfinished", "Unfinished jobs (no metrics.json or failure.json)"),
    ):
        jobs = collection.by_status(status)
        if jobs:
            out += [f"## {title}", "", *_job_list(jobs), ""]
    if collection.missing:
        out += ["## Missing jobs", ""]
        out += [f"- `{m.sweep_dir}` job {m.num}: {_missing_text(m)}" for m in collection.missing] + [""]
    if plots:
        out += ["## Plots", "", *[f"![{p.stem}]({p.name})" for p in plots], ""]
    if evals:
        out += ["## Error analysis (transferlab eval)", "", "Top losses and per-class tables of each run:", ""]
        out += [*evals, ""]
    return "\n".join(out)
