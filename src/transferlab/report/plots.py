"""Report plots (PNG, matplotlib's Agg canvas): the headline metric per group, and mean learning curves.

Each PNG carries the numbers it plots as JSON in a ``transferlab`` text chunk, so a test (or a user) can check
the picture against the jobs: ``PIL.Image.open(path).text["transferlab"]``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transferlab.report.aggregate import Group, curve, is_numeric_key, sort_key

METADATA_KEY = "transferlab"


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # no pyplot: no global backend, no windows
    return fig


def _save(fig: Any, path: Path, data: dict[str, Any]) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():  # long labels: bbox_inches="tight" grows the canvas instead
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    fig.savefig(tmp, format="png", bbox_inches="tight", metadata={METADATA_KEY: json.dumps(data)})
    os.replace(tmp, path)
    return path


def read_plot_data(path: Path) -> dict[str, Any]:
    """The numbers embedded in a report PNG."""
    from PIL import Image

    with Image.open(path) as image:
        return json.loads(image.text[METADATA_KEY])  # type: ignore[attr-defined]


_MAX_LINES = 12


def _line_axes(keys: Sequence[str], groups: Sequence[Group]) -> tuple[int, list[int]] | None:
    """Index of the x key and of the keys that name the lines when the groups suit a line plot, else ``None``.

    x is the numeric key with the most values (e.g. ``data.shots_per_class``); each combination of the other
    keys (e.g. ``strategy`` × ``strategy.init``) is one line, up to a dozen lines.
    """
    numeric = [i for i, k in enumerate(keys) if is_numeric_key(g.values[i] for g in groups)]
    if not numeric:
        return None
    x = max(numeric, key=lambda i: (len({g.values[i] for g in groups}), -i))
    rest = [i for i in range(len(keys)) if i != x]
    if len({tuple(g.values[i] for i in rest) for g in groups}) > _MAX_LINES:
        return None
    return x, rest


def summary_plot(groups: Sequence[Group], keys: Sequence[str], metric: str, path: Path) -> Path | None:
    """Plot ``metric`` (mean ± sample std) per group; ``None`` (nothing written) when no group has a value.

    With a numeric group key, a line per combination of the other keys over that key's values (evenly
    spaced, sorted numerically, ``null`` last); otherwise a bar per group.
    """
    groups = [g for g in groups if g.stats.get(metric) and g.stats[metric].mean is not None]
    if not groups:
        return None
    axes = _line_axes(keys, groups)
    series: list[dict[str, Any]] = []
    if axes is None:
        labels = [", ".join(g.values) or "all" for g in groups]
        series.append(_series(metric, labels, groups, metric))
        fig = _figure(max(5.0, 0.6 * len(groups) + 2), 4.5)
        ax = fig.add_subplot()
        s = series[0]
        ax.bar(range(len(labels)), s["mean"], yerr=[v or 0.0 for v in s["std"]], capsize=3, color="tab:blue")
        rotate = len(labels) > 3 or max(len(label) for label in labels) > 15
        ax.set_xticks(range(len(labels)), labels, rotation=30 if rotate else 0, ha="right" if rotate else "center")
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlabel(", ".join(keys))
        kind, x_key = "bar", None
    else:
        xi, si = axes
        x_key = keys[xi]
        xs = sorted({g.values[xi] for g in groups}, key=sort_key)
        names = sorted({tuple(g.values[i] for i in si) for g in groups}, key=lambda t: [sort_key(v) for v in t])
        fig = _figure(7.0, 4.5)
        ax = fig.add_subplot()
        for name in names:
            members = [g for g in groups if tuple(g.values[i] for i in si) == name]
            members.sort(key=lambda g: sort_key(g.values[xi]))
            label = ", ".join(f"{keys[i]}={v}" for i, v in zip(si, name, strict=True)) or metric
            s = _series(label, [g.values[xi] for g in members], members, metric)
            series.append(s)
            pos = [xs.index(x) for x in s["x"]]
            ax.errorbar(pos, s["mean"], yerr=[v or 0.0 for v in s["std"]], marker="o", capsize=3, label=label)
        ax.set_xticks(range(len(xs)), xs)
        ax.set_xlabel(x_key)
        if si:
            _legend(ax, [s["label"] for s in series])
        kind = "line"
    ax.set_ylabel(f"{metric} (mean ± std)")
    ax.set_title(f"{metric} per group", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path, {"metric": metric, "kind": kind, "x_key": x_key, "series": series})


def _legend(ax: Any, labels: Sequence[str]) -> None:
    """Inside the axes when short, else below them (``bbox_inches="tight"`` makes room)."""
    if len(labels) <= 6 and max(len(str(label)) for label in labels) <= 40:
        ax.legend(fontsize=8)
    else:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.15), frameon=False)


def _series(label: str, xs: list[str], groups: Sequence[Group], metric: str) -> dict[str, Any]:
    return {
        "label": label,
        "x": xs,
        "mean": [g.stats[metric].mean for g in groups],
        "std": [g.stats[metric].std for g in groups],
        "n": [g.stats[metric].n for g in groups],
    }


def curves_plot(groups: Sequence[Group], keys: Sequence[str], metric: str, path: Path) -> Path | None:
    """Mean ``metric`` per epoch (from ``metrics.json`` ``epochs``) for each group, stage starts dotted.

    Returns:
        The path, or ``None`` (nothing written) when no job has the metric in its epoch history.
    """
    series = []
    for group in groups:
        epochs, means, counts, starts = curve(group.jobs, metric)
        if epochs:
            series.append(
                {"label": group.label(keys), "epoch": epochs, "mean": means, "n": counts, "stage_starts": starts}
            )
    if not series:
        return None
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    if len(series) > 10:
        from matplotlib import colormaps

        ax.set_prop_cycle(color=colormaps["tab20"].colors)
    for s in series:
        (line,) = ax.plot(s["epoch"], s["mean"], marker="." if len(s["epoch"]) < 30 else None, label=s["label"])
        for start in s["stage_starts"]:
            ax.axvline(start - 0.5, linestyle=":", color=line.get_color(), alpha=0.7)
    ax.set_xlabel("epoch (stage starts dotted)")
    ax.set_ylabel(f"{metric} (mean over jobs)")
    ax.set_title(f"learning curves: {metric}", fontsize=10)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        _legend(ax, [s["label"] for s in series])
    return _save(fig, path, {"metric": metric, "series": series})
