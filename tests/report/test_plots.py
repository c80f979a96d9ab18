"""Plot layout: small multiples for many learning curves, one axes for few, human labels, nothing overlapping."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest

from tests.report.conftest import curve_rows
from transferlab.report import plots
from transferlab.report.aggregate import Group, group_jobs, metric_names
from transferlab.report.collect import Job
from transferlab.report.plots import curves_figure, curves_plot, human_value, panel_key, read_plot_data, summary_plot

SHOTS = ("5", "20", "null")
STRATEGIES = ("feature_extraction", "finetune", "lp_ft", "scratch", "share_first_k", "bitfit")
# the digits study: feature_extraction from pretrained and from random weights, scratch from random
STUDY = [
    ("feature_extraction", "pretrained"),
    ("feature_extraction", "random"),
    ("finetune", "pretrained"),
    ("lp_ft", "pretrained"),
    ("scratch", "random"),
    ("share_first_k", "pretrained"),
]


def _job(values: dict[str, str], level: float) -> Job:
    # lp_ft probes for two epochs then fine-tunes: a stage start at epoch 2
    stages = ["probe", "probe", "ft", "ft", "ft"] if values.get("strategy") == "lp_ft" else ["train"] * 5
    rows = curve_rows([level * (1 - math.exp(-e - 1)) for e in range(5)], stages)
    return Job(Path("/j"), "done", values=values, metrics={"final": {"test/acc": level}, "epochs": rows})


def _groups(values: list[dict[str, str]]) -> tuple[list[Group], list[str]]:
    jobs = [_job({**v, "seed": str(seed)}, 0.3 + 0.03 * n) for n, v in enumerate(values) for seed in (0, 1)]
    keys = [k for k in values[0] if k != "seed"]
    return group_jobs(jobs, keys, metric_names(jobs)), keys


def _six_by_three() -> tuple[list[Group], list[str]]:
    return _groups([{"strategy": s, "data.shots_per_class": n} for s, n in itertools.product(STRATEGIES, SHOTS)])


def _study() -> tuple[list[Group], list[str]]:
    cells = itertools.product(STUDY, SHOTS)
    return _groups([{"strategy": s, "strategy.init": i, "data.shots_per_class": n} for (s, i), n in cells])


@pytest.fixture(scope="module")
def six_by_three(tmp_path_factory) -> tuple[Any, dict[str, Any]]:
    """``curves.png`` of 6 strategies × 3 budgets, written once (drawing panels is the slow part), and its figure."""
    saved = []

    def save(fig: Any, path: Path, data: dict[str, Any]) -> Path:
        saved.append(fig)
        return real_save(fig, path, data)

    real_save = plots._save
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "_save", save)
        path = curves_plot(*_six_by_three(), "val/acc", tmp_path_factory.mktemp("six") / "curves.png")
    return saved[0], read_plot_data(path)


def _panels(fig: Any) -> list[Any]:
    return [ax for ax in fig.axes if ax.lines]


def _legend_texts(ax: Any) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def _assert_readable(fig: Any) -> None:
    """No legend over any axes, tick labels, title or other legend; every text inside the figure and ≥ 7 pt."""
    from matplotlib.text import Text

    fig.draw_without_rendering()  # lays the figure out (as savefig does) without rasterising it
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    legends = [ax.get_legend().get_window_extent(renderer) for ax in fig.axes if ax.get_legend()]
    others = []
    for ax in fig.axes:
        others += [ax.get_window_extent(renderer), ax.xaxis.get_tightbbox(renderer), ax.title.get_window_extent()]
    for n, box in enumerate(legends):
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
        assert not any(box.overlaps(o) for o in others if o is not None and o.width > 0)
        assert not any(box.overlaps(o) for o in legends[n + 1 :])
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(titles, 2))
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    assert texts and min(t.get_fontsize() for t in texts) >= 7


def test_six_strategies_by_three_budgets_are_a_panel_per_strategy(six_by_three):
    fig, data = six_by_three
    panels = _panels(fig)
    assert len(panels) == 6 and data["layout"] == "panels" and data["panel_key"] == "strategy"
    assert [ax.get_title() for ax in panels] == [f"strategy={s}" for s in sorted(STRATEGIES)]
    for ax in panels:
        assert _legend_texts(ax) == ["data.shots_per_class=5", "data.shots_per_class=20", "data.shots_per_class=all"]
        assert len({line.get_color() for line in ax.lines if line.get_label()[0] != "_"}) == 3
    first = [line.get_color() for line in panels[0].lines[:3]]
    assert all([line.get_color() for line in ax.lines[:3]] == first for ax in panels)  # shots=5 alike everywhere
    assert len({ax.get_ylim() for ax in panels}) == 1 and len({ax.get_xlim() for ax in panels}) == 1  # shared
    lp_ft = panels[sorted(STRATEGIES).index("lp_ft")]
    assert [line.get_xdata()[0] for line in lp_ft.lines if line.get_linestyle() == ":"] == [1.5]  # stage start
    assert len(data["series"]) == 18 and data["series"][0]["label"] == "strategy=bitfit, data.shots_per_class=5"
    _assert_readable(fig)


def test_the_study_keeps_init_in_titles_where_it_is_constant_and_legends_short():
    groups, keys = _study()
    fig, _ = curves_figure(groups, keys, "val/acc")
    panels = {ax.get_title(): ax for ax in _panels(fig)}
    assert list(panels) == [
        "strategy=feature_extraction",
        "strategy=finetune, strategy.init=pretrained",
        "strategy=lp_ft, strategy.init=pretrained",
        "strategy=scratch, strategy.init=random",
        "strategy=share_first_k, strategy.init=pretrained",
    ]
    both = _legend_texts(panels["strategy=feature_extraction"])
    assert len(both) == 6 and both[0] == "strategy.init=pretrained, data.shots_per_class=5"
    assert all(len(_legend_texts(ax)) <= 6 for ax in panels.values())
    assert not any("null" in t for ax in panels.values() for t in [ax.get_title(), *_legend_texts(ax)])
    colours = [line.get_color() for line in panels["strategy=feature_extraction"].lines if line.get_linestyle() != ":"]
    assert len(set(colours)) == 6  # pretrained and random init differ in shade within the panel
    _assert_readable(fig)


def test_two_curves_stay_on_one_axes_with_the_legend_beside_it():
    groups, keys = _groups([{"strategy": "a", "data.shots_per_class": n} for n in ("5", "null")])
    fig, data = curves_figure(groups, keys, "val/acc")
    (ax,) = fig.axes
    assert data["layout"] == "single" and _legend_texts(ax) == ["data.shots_per_class=5", "data.shots_per_class=all"]
    assert "strategy=a" in ax.get_title()  # one value: in the title, not in every legend entry
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    _assert_readable(fig)


def test_one_varying_key_is_one_axes_with_a_colour_per_value():
    lrs = ["1e-4", "3e-4", "1e-3", "3e-3", "1e-2", "3e-2", "0.1", "<default>"]
    groups, keys = _groups([{"optim.lr": lr} for lr in lrs])
    fig, _ = curves_figure(groups, keys, "val/acc")
    (ax,) = fig.axes
    assert _legend_texts(ax)[-1] == "optim.lr=default" and len({line.get_color() for line in ax.lines}) == 8
    _assert_readable(fig)


def test_curves_png_is_written_with_its_layout(six_by_three, tmp_path):
    _, data = six_by_three
    assert {s["panel"] for s in data["series"]} == set(STRATEGIES) and data["series"][0]["linestyle"] == "-"
    groups, keys = _six_by_three()
    assert curves_plot(groups, keys, "no/such", tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_summary_ticks_and_legend_say_all_for_null(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, data: saved.append((fig, data)) or path)
    groups, keys = _six_by_three()
    summary_plot(groups, keys, "test/acc", tmp_path / "summary.png")
    fig, data = saved[0]
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "20", "all"]
    assert data["series"][0]["x"] == ["5", "20", "null"]  # the embedded numbers keep the raw values
    assert len({line.get_color() for line in ax.lines}) == 6
    _assert_readable(fig)

    cells = [{"backbone.weights": w, "strategy.init": i} for w in ("null", "w.pt") for i in ("<default>", "random")]
    bar_groups, bar_keys = _groups(cells)  # no numeric key: a bar per group
    summary_plot(bar_groups, bar_keys, "test/acc", tmp_path / "bar.png")
    labels = [t.get_text() for t in saved[1][0].axes[0].get_xticklabels()]
    assert labels == ["w.pt, random", "w.pt, default", "null, random", "null, default"]  # a text null is no "all"


def test_human_values_and_the_panel_key_rule():
    assert [human_value(v, True) for v in ("5", "null", "<default>")] == ["5", "all", "default"]
    assert human_value("null", numeric=False) == "null"

    def groups(*rows: tuple[str, ...]) -> list[Group]:
        return [Group(r, [], {}) for r in rows]

    lr_shots = groups(("1e-3", "5"), ("1e-2", "5"), ("1e-1", "5"), ("1e-3", "null"), ("1e-2", "null"))
    assert panel_key(["lr", "shots"], lr_shots) == 1  # fewest values above one
    with_strategy = groups(("a", "x", "1"), ("b", "x", "2"), ("c", "y", "1"))
    assert panel_key(["lr", "strategy", "seed"], with_strategy) == 1  # the strategy key wins
    assert panel_key(["lr"], groups(("1",), ("1",))) is None
    assert [plots._grid(n) for n in (1, 2, 3, 4, 5, 7)] == [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]
