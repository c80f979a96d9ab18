"""The ranking table of ``transferlab rank``: fine-tuned accuracy of finished runs beside the scores, text/CSV/MD.

Finished runs are found under ``ranking.runs`` (by default the output root) with the report's own collector. A
run counts for a candidate when its backbone name and weights are the candidate's (paths compared as the
files they resolve to) and its data config is the ranking's, ignoring the seed, augmentation and loader-only
keys: the seeds of a sweep pool into one mean. Its test accuracy is shown, per strategy, as a report does:
next to the scores, never used to rank.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferlab.backbones.weight_files import resolve_weights_path
from transferlab.errors import TransferlabError
from transferlab.report.aggregate import metric_value
from transferlab.report.collect import collect
from transferlab.report.render import write_csv, write_text_atomic
from transferlab.run.feature_cache import LOADER_ONLY_KEYS
from transferlab.run.rank import RankRow

#: Data keys that do not change which task a run solves.
_IGNORED_DATA_KEYS = (*LOADER_ONLY_KEYS, "seed", "augment")
METRICS = ("test/acc", "test/map")


@dataclass
class Finetuned:
    """Finished runs of one candidate on this data, per strategy: test metric values."""

    metric: str = "test/acc"
    values: dict[str, list[float]] = field(default_factory=dict)

    def text(self) -> str:
        """``0.9123 ± 0.0100 (lp_ft, 3)``; several strategies joined by ``;``; ``–`` for none."""
        if not self.values:
            return "–"
        parts = []
        for strategy, values in sorted(self.values.items()):
            spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
            parts.append(f"{statistics.fmean(values):.4f}{spread} ({strategy}, {len(values)})")
        return "; ".join(parts)

    def mean(self) -> float | None:
        """The mean over every run (all strategies)."""
        every = [v for values in self.values.values() for v in values]
        return statistics.fmean(every) if every else None


def _weights_key(weights: Any) -> str | None:
    if weights is None or str(weights).lower() in ("null", "none", "random"):
        return None
    if weights in ("hub", "package"):
        return str(weights)
    try:
        return str(resolve_weights_path(str(weights)).resolve())
    except TransferlabError:
        return str(Path(str(weights)).expanduser().resolve())


def _task_data(data: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in sorted(data.items()) if k not in _IGNORED_DATA_KEYS}, default=str)


def finetuned(rows: Sequence[RankRow], data: Mapping[str, Any], runs: Path | None) -> list[Finetuned]:
    """Per row, the finished runs of its candidate on ``data`` under ``runs`` (none when ``runs`` is ``None``)."""
    found = [Finetuned() for _ in rows]
    if runs is None or not runs.is_dir():
        return found
    wanted = {(r.candidate.backbone.name, _weights_key(r.candidate.backbone.weights)): i for i, r in enumerate(rows)}
    task = _task_data(data)
    for job in collect([runs]).by_status("done"):
        config = job.config()
        backbone, job_data = config.get("backbone") or {}, config.get("data") or {}
        index = wanted.get((backbone.get("name"), _weights_key(backbone.get("weights"))))
        if index is None or not isinstance(job_data, Mapping) or _task_data(job_data) != task:
            continue
        metric = next((m for m in METRICS if metric_value(job, m) is not None), None)
        if metric is None:
            continue
        strategy = str((config.get("strategy") or {}).get("name", "?"))
        choice = (job.metrics or {}).get("strategy_choice") or {}
        if isinstance(choice, Mapping) and choice.get("recipe"):
            strategy = f"{strategy}→{choice['recipe']}"
        found[index].metric = metric
        found[index].values.setdefault(strategy, []).append(metric_value(job, metric))  # type: ignore[arg-type]
    return found


def ranks(rows: Sequence[RankRow], estimator: str) -> list[int | None]:
    """1-based rank of each row by ``estimator`` (higher is better; ties share the better rank)."""
    values = [r.scores.get(estimator) for r in rows]
    scored = [v for v in values if v is not None and math.isfinite(v)]
    return [None if v is None or not math.isfinite(v) else 1 + sum(s > v for s in scored) for v in values]


def order(rows: Sequence[RankRow], estimator: str) -> list[int]:
    """Row indices by ``estimator``, best first; unscored and failed rows last, in their given order."""
    by = ranks(rows, estimator)
    return sorted(range(len(rows)), key=lambda i: (by[i] is None, by[i] or 0, i))


def table(
    rows: Sequence[RankRow], estimators: Sequence[str], tuned: Sequence[Finetuned]
) -> tuple[list[str], list[list]]:
    """The CSV table: one row per candidate, best first by the first estimator."""
    metric = next((t.metric for t in tuned if t.values), "test/acc")
    header = ["candidate", "architecture", "weights", "samples", "features"]
    header += [c for e in estimators for c in (e, f"{e}_rank")]
    header += ["seconds", "feature_seconds", f"finetuned_{metric}", f"finetuned_{metric}_runs", "source", "cache"]
    header += ["skipped", "error"]
    by = {e: ranks(rows, e) for e in estimators}
    out = []
    for i in order(rows, estimators[0]):
        r = rows[i]
        cells: list[Any] = [r.candidate.label, r.architecture, r.candidate.weights_text, r.samples, r.width]
        cells += [c for e in estimators for c in (r.scores.get(e), by[e][i])]
        cells += [round(r.seconds, 3), round(r.feature_seconds, 3), tuned[i].mean(), tuned[i].text(), r.source, r.cache]
        cells += ["; ".join(f"{k}: {v}" for k, v in r.skipped.items()), r.error]
        out.append(cells)
    return header, out


def _cell(value: float | None, rank: int | None) -> str:
    return "–" if value is None else f"{value:.4g} ({rank})"


def display_rows(
    rows: Sequence[RankRow], estimators: Sequence[str], tuned: Sequence[Finetuned]
) -> tuple[list[str], list[list[str]]]:
    """The printed and Markdown table: ``score (rank)`` per estimator, seconds, fine-tuned accuracy."""
    metric = next((t.metric for t in tuned if t.values), "test/acc")
    header = ["#", "candidate", "features", *estimators, "seconds", f"fine-tuned {metric}"]
    by = {e: ranks(rows, e) for e in estimators}
    lines = []
    for place, i in enumerate(order(rows, estimators[0]), 1):
        r = rows[i]
        if r.error:
            lines.append([str(place), r.candidate.label, "failed", *["–"] * len(estimators), "–", tuned[i].text()])
            continue
        scores = [_cell(r.scores.get(e), by[e][i]) for e in estimators]
        shape = f"{r.samples}×{r.width}"
        lines.append([str(place), r.candidate.label, shape, *scores, f"{r.seconds:.1f}", tuned[i].text()])
    return header, lines


def text_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines, strict=True)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in [header, *lines])  # fmt: skip


def markdown(
    rows: Sequence[RankRow], estimators: Sequence[str], tuned: Sequence[Finetuned], command: str, notes: Sequence[str]
) -> str:
    """``ranking.md``: the command, the table, what each estimator is, skipped estimators and failures."""
    from transferlab.ranking import ESTIMATORS

    header, lines = display_rows(rows, estimators, tuned)
    escape = [[str(c).replace("|", "\\|") for c in row] for row in lines]
    text = ["# Transferability ranking", "", f"`{command}`", ""]
    text += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    text += ["| " + " | ".join(row) + " |" for row in escape]
    text += ["", f"Sorted by {estimators[0]}; each score is shown with its rank among the candidates (higher is "
             "better). Scores are computed on the training split; fine-tuned accuracy is of finished runs found "
             "with the same data (test split: shown, never used to rank).", ""]  # fmt: skip
    text += [f"- **{e}**: {ESTIMATORS[e].title}" for e in estimators]
    extra = [f"- {r.candidate.label}: {k} skipped, {v}" for r in rows for k, v in r.skipped.items()]
    extra += [f"- {r.candidate.label}: **failed**, {r.error}" for r in rows if r.error]
    if extra or notes:
        text += ["", "## Notes", "", *[f"- {n}" for n in notes], *extra]
    return "\n".join(text) + "\n"


def write_outputs(
    out: Path,
    rows: Sequence[RankRow],
    estimators: Sequence[str],
    tuned: Sequence[Finetuned],
    command: str,
    notes: Sequence[str],
) -> list[Path]:
    """Write ``ranking.csv``, ``ranking.md`` and ``ranking.json`` into ``out`` (each atomically)."""
    header, csv_rows = table(rows, estimators, tuned)
    paths = [write_csv(out / "ranking.csv", header, csv_rows)]
    paths.append(write_text_atomic(out / "ranking.md", markdown(rows, estimators, tuned, command, notes)))
    records = [dict(zip(header, row, strict=True)) for row in csv_rows]
    document = {"command": command, "estimators": list(estimators), "notes": list(notes), "candidates": records}
    paths.append(write_text_atomic(out / "ranking.json", json.dumps(document, indent=2, default=str) + "\n"))
    return paths
