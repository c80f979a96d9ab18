"""Report plots (PNG, matplotlib's Agg canvas): the headline metric per group, and mean learning curves.

Each PNG carries the numbers it plots as JSON in a ``transferlab`` text chunk, so a test (or a user) can check
the picture against the jobs: ``PIL.Image.open(path).text["transferlab"]``. The JSON keeps the raw override
values (``null``, ``<default>``); the picture shows them in human form (:func:`human_value`).

Learning curves of more than :data:`MAX_SINGLE_AXES` groups are drawn as small multiples: one panel per value
of one group key (:func:`panel_key`), each panel holding the curves of the other keys' values with its own
short legend under it. The same value combination of the other keys has the same colour and line style in
every panel, and x and y are shared, so panels compare at a glance.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.report.aggregate import Group, curve, is_numeric_key, sort_key
from transferlab.report.collect import DEFAULT

METADATA_KEY = "transferlab"
MAX_SINGLE_AXES = 6  # more curves than this on one axes and the legend outgrows the plot
STRATEGY_KEYS = ("strategy", "strategy.name")
_LINESTYLES = ("-", "--", "-.", (0, (5, 1, 1, 1, 1, 1)))  # no ":" — dotted marks stage starts
_MARKERS = ("o", "s", "^", "D", "v")
_PANEL_W, _PANEL_H = 4.2, 2.6  # inches of one panel's axes area
_LEGEND_ROW_H = 0.19  # inches per legend row at fontsize 8
_UNDER_AXES = 0.5  # inches from the axes' bottom edge to clear the tick labels and the x label


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # constrained layout makes room for suptitles, supylabels and legends outside the axes; tight_layout does not
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # no pyplot: no global backend, no windows
    return fig


def _save(fig: Any, path: Path, data: dict[str, Any]) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():  # labels too long to lay out: bbox_inches="tight" grows the canvas instead
        warnings.simplefilter("ignore", UserWarning)
        fig.savefig(tmp, format="png", bbox_inches="tight", metadata={METADATA_KEY: json.dumps(data)})
    os.replace(tmp, path)
    return path


def read_plot_data(path: Path) -> dict[str, Any]:
    """The numbers embedded in a report PNG."""
    from PIL import Image

    with Image.open(path) as image:
        return json.loads(image.text[METADATA_KEY])  # type: ignore[attr-defined]


def human_value(value: str, numeric: bool) -> str:
    """How an override value reads on a plot.

    Args:
        value: The raw override value, e.g. ``5``, ``null``, ``<default>``.
        numeric: Whether the key's values are numbers; there ``null`` is "no limit" (``data.shots_per_class=null``
            is all labels) and reads ``all``. A ``null`` of a text key (``backbone.weights=null``) stays ``null``.

    Returns:
        ``all`` for a numeric key's ``null``, ``default`` for ``<default>``, else ``value``.
    """
    if value == DEFAULT:
        return "default"
    if value == "null" and numeric:
        return "all"
    return value


def _numeric(keys: Sequence[str], groups: Sequence[Group]) -> list[bool]:
    return [is_numeric_key(g.values[i] for g in groups) for i in range(len(keys))]


def _pairs(keys: Sequence[str], values: Sequence[str], numeric: Sequence[bool], index: Sequence[int]) -> str:
    """``key=value, ...`` in human form for the keys at ``index``."""
    return ", ".join(f"{keys[i]}={human_value(values[i], numeric[i])}" for i in index)


def _palette(n: int) -> list[Any]:
    """``n`` distinct colours: tab10, tab20, then evenly spaced viridis (no repeats however many)."""
    from matplotlib import colormaps

    if n <= 10:
        return list(colormaps["tab10"].colors[:n])
    if n <= 20:
        return list(colormaps["tab20"].colors[:n])
    return [colormaps["viridis"](i / (n - 1)) for i in range(n)]


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
    spaced, sorted numerically, ``null`` last and shown as ``all``); otherwise a bar per group.
    """
    groups = [g for g in groups if g.stats.get(metric) and g.stats[metric].mean is not None]
    if not groups:
        return None
    numeric = _numeric(keys, groups)
    axes = _line_axes(keys, groups)
    series: list[dict[str, Any]] = []
    if axes is None:
        labels = [", ".join(g.values) or "all" for g in groups]
        shown = [", ".join(human_value(v, n) for v, n in zip(g.values, numeric, strict=True)) or "all" for g in groups]
        series.append(_series(metric, labels, groups, metric))
        fig = _figure(max(5.0, 0.6 * len(groups) + 2), 4.5)
        ax = fig.add_subplot()
        s = series[0]
        ax.bar(range(len(labels)), s["mean"], yerr=[v or 0.0 for v in s["std"]], capsize=3, color="tab:blue")
        rotate = len(shown) > 3 or max(len(label) for label in shown) > 15
        ax.set_xticks(range(len(shown)), shown, rotation=30 if rotate else 0, ha="right" if rotate else "center")
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlabel(", ".join(keys))
        kind, x_key = "bar", None
    else:
        xi, si = axes
        x_key = keys[xi]
        xs = sorted({g.values[xi] for g in groups}, key=sort_key)
        names = sorted({tuple(g.values[i] for i in si) for g in groups}, key=lambda t: [sort_key(v) for v in t])
        colours = _palette(len(names))  # the default cycle repeats after ten lines
        fig = _figure(7.0, 4.5)
        ax = fig.add_subplot()
        shown = []
        for colour, name in zip(colours, names, strict=True):
            members = [g for g in groups if tuple(g.values[i] for i in si) == name]
            members.sort(key=lambda g: sort_key(g.values[xi]))
            label = ", ".join(f"{keys[i]}={v}" for i, v in zip(si, name, strict=True)) or metric
            shown.append(_pairs(keys, members[0].values, numeric, si) or metric)
            s = _series(label, [g.values[xi] for g in members], members, metric)
            series.append(s)
            pos = [xs.index(x) for x in s["x"]]
            yerr = [v or 0.0 for v in s["std"]]
            ax.errorbar(pos, s["mean"], yerr=yerr, marker="o", capsize=3, color=colour, label=shown[-1])
        ax.set_xticks(range(len(xs)), [human_value(x, numeric[xi]) for x in xs])
        ax.set_xlabel(x_key)
        if si:
            _legend(ax, shown, 7.0, beside=max(len(label) for label in shown) <= 40)
        kind = "line"
    ax.set_ylabel(f"{metric} (mean ± std)")
    ax.set_title(f"{metric} per group", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path, {"metric": metric, "kind": kind, "x_key": x_key, "series": series})


def _legend(ax: Any, labels: Sequence[str], width: float, beside: bool) -> None:
    """A legend outside the axes, never over the data: beside them, or in columns under the x label.

    Args:
        ax: The axes whose labelled artists the legend lists.
        labels: Their labels (to size the columns).
        width: Inches the legend may span under the axes.
        beside: To the right of the axes, else under them.
    """
    if beside:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        return
    from matplotlib.transforms import ScaledTranslation

    # a fixed offset in inches under the axes clears the tick labels and x label at any axes size
    under = ax.transAxes + ScaledTranslation(0, -_UNDER_AXES, ax.figure.dpi_scale_trans)
    longest = max(len(label) for label in labels)
    cols = max(1, min(len(labels), int(width * 100 // (longest * 5.5 + 45))))  # ~5.5 px a character at 8 pt
    ax.legend(
        fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=under, ncols=cols,
        frameon=False, handlelength=2.5, columnspacing=1.2,
    )  # fmt: skip


def _series(label: str, xs: list[str], groups: Sequence[Group], metric: str) -> dict[str, Any]:
    return {
        "label": label,
        "x": xs,
        "mean": [g.stats[metric].mean for g in groups],
        "std": [g.stats[metric].std for g in groups],
        "n": [g.stats[metric].n for g in groups],
    }


def panel_key(keys: Sequence[str], groups: Sequence[Group]) -> int | None:
    """Index of the group key whose values get a panel each in the small-multiples curves plot.

    Rule: the strategy key (``strategy`` or ``strategy.name``) when it is a group key with more than one value
    (learning curves differ most by strategy, and a strategy's stage starts are the same in its panel);
    otherwise the key with the fewest distinct values above one (few, fuller panels), the first on ties.

    Returns:
        The key's index in ``keys``, or ``None`` when no key has more than one value.
    """
    counts = [len({g.values[i] for g in groups}) for i in range(len(keys))]
    varying = [i for i, c in enumerate(counts) if c > 1]
    for name in STRATEGY_KEYS:
        if name in keys and keys.index(name) in varying:
            return keys.index(name)
    return min(varying, key=lambda i: (counts[i], i), default=None)


def _styles(combos: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], dict[str, Any]]:
    """Colour, line style and marker per value combination of the legend keys, the same in every panel.

    The key with the most values (the first on ties) sets the hue, the combination of the other keys the line
    style and marker. With two such combinations (e.g. ``strategy.init`` pretrained/random) they also set the
    shade, so ``data.shots_per_class=5`` is blue in every panel and colours within a panel stay distinct (the
    second is the light, dashed shade); otherwise each combination gets a colour of its own.
    """
    combos = sorted(set(combos), key=lambda t: [sort_key(v) for v in t])
    width = len(combos[0]) if combos else 0
    if width == 0:
        return {c: {"color": "tab:blue", "linestyle": "-", "marker": "o"} for c in combos}
    counts = [len({c[i] for c in combos}) for i in range(width)]
    hue_at = max(range(width), key=lambda i: (counts[i], -i))
    hues = sorted({c[hue_at] for c in combos}, key=sort_key)
    rests = sorted({c[:hue_at] + c[hue_at + 1 :] for c in combos}, key=lambda t: [sort_key(v) for v in t])
    if len(rests) == 2 and len(hues) <= 10:
        base = _palette(len(hues))
        colours = {c: _shade(base[hues.index(c[hue_at])], rests.index(c[:hue_at] + c[hue_at + 1 :])) for c in combos}
    else:  # one curve per hue, or too many to pair: a colour per combination
        colours = dict(zip(combos, _palette(len(combos)), strict=True))
    styles = {}
    for c in combos:
        j = rests.index(c[:hue_at] + c[hue_at + 1 :])
        styles[c] = {"color": colours[c], "linestyle": _LINESTYLES[j % len(_LINESTYLES)], "marker": _MARKERS[j % 5]}
    return styles


def _shade(colour: Any, j: int) -> tuple[float, float, float]:
    """``colour`` itself for ``j == 0``, else mixed with white: tab20's light shades are too faint on white."""
    from matplotlib.colors import to_rgb

    mix = 0.42 * j
    return tuple(c + (1.0 - c) * mix for c in to_rgb(colour))  # type: ignore[return-value]


def _grid(n: int) -> tuple[int, int]:
    """Rows and columns for ``n`` panels: at most three columns, 2×2 for four."""
    cols = 1 if n == 1 else 2 if n in (2, 4) else 3
    return math.ceil(n / cols), cols


def curves_plot(groups: Sequence[Group], keys: Sequence[str], metric: str, path: Path) -> Path | None:
    """Mean ``metric`` per epoch (from ``metrics.json`` ``epochs``) for each group, stage starts dotted.

    Up to :data:`MAX_SINGLE_AXES` curves (a dozen when only one key varies) share one axes with the legend to
    its right; more are split into panels by :func:`panel_key`, a legend under each panel naming its curves by
    the remaining keys. Keys with one value (in the plot, or in a panel) go in the (panel) title instead.

    Returns:
        The path, or ``None`` (nothing written) when no job has the metric in its epoch history.
    """
    made = curves_figure(groups, keys, metric)
    if made is None:
        return None
    fig, data = made
    return _save(fig, path, data)


def curves_figure(groups: Sequence[Group], keys: Sequence[str], metric: str) -> tuple[Any, dict[str, Any]] | None:
    """The learning-curves figure and the numbers it shows (see :func:`curves_plot`), not yet saved.

    Returns:
        ``(figure, data)``, or ``None`` when no job has ``metric`` in its epoch history.
    """
    drawn: list[tuple[Group, dict[str, Any]]] = []
    for group in groups:
        epochs, means, counts, starts = curve(group.jobs, metric)
        if epochs:
            s = {"label": group.label(keys), "epoch": epochs, "mean": means, "n": counts, "stage_starts": starts}
            drawn.append((group, s))
    if not drawn:
        return None
    used = [g for g, _ in drawn]
    numeric = _numeric(keys, used)
    varying = [i for i in range(len(keys)) if len({g.values[i] for g in used}) > 1]
    # one varying key: its curves compare best on one axes (up to the summary plot's line cap)
    few = len(drawn) <= (_MAX_LINES if len(varying) == 1 else MAX_SINGLE_AXES)
    split = None if few else panel_key(keys, used)
    legend_keys = [i for i in varying if i != split]
    styles = _styles([_of(g, legend_keys) for g in used])
    staged = any(s["stage_starts"] for _, s in drawn)
    title = f"learning curves: {metric} (mean over jobs{'; dotted: stage starts' if staged else ''})"
    constant = [i for i in range(len(keys)) if i not in varying]
    if constant:
        title += "\n" + _pairs(keys, used[0].values, numeric, constant)
    draw = _Draw(keys, numeric, legend_keys, styles)
    if split is None:
        fig = _figure(7.5, 4.5)
        ax = fig.add_subplot()
        draw.panel(ax, drawn, beside=True)
        ax.set_ylabel(f"{metric} (mean over jobs)")
        ax.set_title(title, fontsize=10)
    else:
        values = sorted({g.values[split] for g in used}, key=sort_key)
        fig = _small_multiples(draw, [[(g, s) for g, s in drawn if g.values[split] == v] for v in values], split)
        fig.supylabel(f"{metric} (mean over jobs)", fontsize=10)
        fig.suptitle(title, fontsize=11)
    from matplotlib.colors import to_hex

    for g, s in drawn:
        style = styles[_of(g, legend_keys)]
        s.update(color=to_hex(style["color"]), linestyle=str(style["linestyle"]))
        s["panel"] = None if split is None else g.values[split]
    data = {"metric": metric, "layout": "single" if split is None else "panels"}
    data.update(panel_key=None if split is None else keys[split], series=[s for _, s in drawn])
    return fig, data


def _small_multiples(draw: _Draw, panels: Sequence[Sequence[tuple[Group, dict[str, Any]]]], split: int) -> Any:
    """A figure with one panel per member list, on shared axes, titled ``split key=value`` (and its constants)."""
    rows, cols = _grid(len(panels))
    # every row is as tall as the longest legend needs (its entries, at worst one per line)
    legend_rows = max(len({_of(g, draw.legend_keys) for g, _ in p}) for p in panels)
    height = rows * (_PANEL_H + _UNDER_AXES + 0.35 + _LEGEND_ROW_H * legend_rows) + 0.5
    fig = _figure(cols * _PANEL_W, height)
    grid = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for n, ax in enumerate(grid.flat):
        if n >= len(panels):
            ax.remove()  # an empty grid slot
            continue
        same = draw.panel(ax, panels[n], beside=False)
        ax.set_title(_pairs(draw.keys, panels[n][0][0].values, draw.numeric, [split, *same]), fontsize=9)
        ax.tick_params(labelbottom=True)  # shared x, but each panel's legend sits between the rows
    return fig


def _of(group: Group, index: Sequence[int]) -> tuple[str, ...]:
    return tuple(group.values[i] for i in index)


@dataclass
class _Draw:
    """What every panel of one curves figure shares: the keys, and the style of each legend-key combination."""

    keys: Sequence[str]
    numeric: Sequence[bool]  # per key: numeric (for human values)
    legend_keys: Sequence[int]  # indexes of the keys that tell curves apart (the varying keys but the panel key)
    styles: dict[tuple[str, ...], dict[str, Any]]  # colour, line style, marker per legend_keys combination

    def panel(self, ax: Any, members: Sequence[tuple[Group, dict[str, Any]]], beside: bool) -> list[int]:
        """Draw one panel's curves, its stage starts and its legend.

        Args:
            ax: The panel's axes.
            members: The panel's groups and their curves.
            beside: Legend to the right of the axes (one-axes plot), else under the panel.

        Returns:
            Indexes of the legend keys with one value in this panel: they belong in its title, not its legend.
        """
        same = [i for i in self.legend_keys if len({g.values[i] for g, _ in members}) == 1]
        label_keys = [i for i in self.legend_keys if i not in same]
        starts: dict[int, set[Any]] = {}
        for g, s in members:
            style = self.styles[_of(g, self.legend_keys)]
            label = _pairs(self.keys, g.values, self.numeric, label_keys) or None
            mark = {"marker": style["marker"], "markersize": 3} if len(s["epoch"]) < 30 else {}
            ax.plot(s["epoch"], s["mean"], color=style["color"], linestyle=style["linestyle"], label=label, **mark)
            for start in s["stage_starts"]:
                starts.setdefault(start, set()).add(style["color"])
        for start, colours in starts.items():
            # a start shared by several curves (a strategy's stages) in grey; one curve's own in its colour
            colour = next(iter(colours)) if len(colours) == 1 and len(members) > 1 else "0.45"
            ax.axvline(start - 0.5, linestyle=":", linewidth=1.2, color=colour, zorder=1)
        ax.set_xlabel("epoch", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if label_keys:
            labels = [_pairs(self.keys, g.values, self.numeric, label_keys) for g, _ in members]
            _legend(ax, labels, _PANEL_W, beside)
        return same
