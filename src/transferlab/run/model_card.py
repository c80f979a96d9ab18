"""The model card: a ``README.md`` in the run dir saying what the model is, how good, and how to use it.

Written at the end of every run from what ``metrics.json`` and the resolved config hold, so it never says more
than the run measured: the data and its classes, the backbone and the strategy's stages, the metrics table
(validation beside test; the model was chosen on validation), the preprocessing, and the exact ``predict``,
``export`` and ``eval`` commands for this run dir.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transferlab.rundir.layout import MODEL_CARD_FILE, MODEL_FILE

#: Class names listed in full up to this many; beyond, the first ones and a count.
MAX_CLASSES_LISTED = 40


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def _seconds(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "—"


def metrics_table(final: Mapping[str, Any]) -> list[str]:
    """Markdown rows ``metric | validation | test`` of the final metrics (``val/x`` beside ``test/x``)."""
    names: list[str] = []
    for key in final:
        split, _, name = key.partition("/")
        if split in ("val", "test") and name and name not in names:
            names.append(name)
    rows = ["| metric | validation | test |", "|---|---:|---:|"]
    rows += [f"| {n} | {_fmt(final.get(f'val/{n}'))} | {_fmt(final.get(f'test/{n}'))} |" for n in names]
    return rows


def _data_lines(data: Mapping[str, Any], classes: Sequence[str], counts: Mapping[str, int] | None) -> list[str]:
    source = next((f"`{data[k]}`" for k in ("root", "file") if data.get(k)), None)
    lines = [f"- **Data:** `{data.get('name')}`" + (f" from {source}" if source else "")]
    if counts:
        lines.append("- **Split:** " + ", ".join(f"{n} {s}" for s, n in counts.items()) + " images")
    shown = ", ".join(f"`{c}`" for c in classes[:MAX_CLASSES_LISTED])
    more = f", … ({len(classes) - MAX_CLASSES_LISTED} more)" if len(classes) > MAX_CLASSES_LISTED else ""
    lines.append(f"- **Classes ({len(classes)}):** {shown}{more}")
    return lines


def _stage_lines(stages: Mapping[str, Mapping[str, Any]], monitor: str) -> list[str]:
    rows = [f"| stage | epochs | best epoch of the stage | {monitor} | seconds |", "|---|---:|---:|---:|---:|"]
    first = 0  # metrics.json counts epochs over the whole run; the card counts them within each stage, from 1
    for name, row in stages.items():
        ran, planned = row.get("epochs"), row.get("planned_epochs")
        epochs = f"{ran}" + (f" of {planned}" if planned not in (None, ran) else "")  # a step stopped early
        at = row.get("best_epoch")
        best = str(at - first + 1) if isinstance(at, int) else "—"
        first += ran if isinstance(ran, int) else 0
        score, seconds = _fmt(row.get(monitor)), _seconds(row.get("seconds"))
        rows.append(f"| {name} | {epochs} | {best} | {score} | {seconds} |")
    return rows


def _selection_lines(selection: Mapping[str, Any] | None, stages: int) -> list[str]:
    """Which stage's weights the model holds, and why (several stages only)."""
    if not selection or stages < 2:
        return []
    return ["", f"The model holds the weights of stage **{selection.get('stage')}**: {selection.get('reason')}."]


def usage_lines(run_dir: Path, has_model: bool, multi_task: bool) -> list[str]:
    """The commands that use this run's model, with its path."""
    run = shlex.quote(str(run_dir))
    if multi_task:
        return [
            "This is a multi-task model (one head per task): `predict`, `export` and `eval` take single-head models.",
            f"Reuse its trunk: `transferlab train backbone=checkpoint backbone.weights={run}/{MODEL_FILE}`.",
        ]
    if not has_model:
        return [f"The run was trained with `export=false`: there is no `{MODEL_FILE}`; its checkpoints are below it."]
    return [
        "```bash",
        f"transferlab predict {run} photos/ --output predictions.csv   # label new images (files, folders, a CSV)",
        f"transferlab export {run} --format onnx                      # model.onnx with its preprocessing",
        f"transferlab export {run} --format torchscript               # model.pt",
        f"transferlab eval {run}                                      # per-class table, confusions, top losses",
        "```",
    ]


def render_model_card(metrics: Mapping[str, Any], config: Mapping[str, Any], extra: Mapping[str, Any]) -> str:
    """The card's Markdown.

    Args:
        metrics: The content of ``metrics.json``.
        config: The resolved config.
        extra: ``class_names``, ``split_counts``, ``preprocessing`` (plain dict or ``None``), ``has_model``,
            ``multi_label``, ``multi_task``, ``version``.
    """
    run_dir = Path(metrics["run_dir"])
    backbone = config.get("backbone") or {}
    final = metrics.get("final") or {}
    kind = "multi-label (a sigmoid per label)" if extra.get("multi_label") else "single-label (softmax)"
    lines = [
        f"# {config.get('task_name', 'run')}: {metrics['backbone']} on {metrics['data']} ({metrics['strategy']})",
        "",
        f"Trained by transferlab {extra.get('version', '?')} in {_seconds(metrics.get('seconds'))} s, seed "
        f"{metrics.get('seed')}. The model was chosen on `{metrics.get('optimized_metric')}` (validation data); "
        "the test split was scored once, at the end.",
        "",
        "## Model and data",
        "",
        f"- **Backbone:** `{metrics['backbone']}`, weights `{backbone.get('weights') or 'random init'}`, "
        f"{metrics.get('total_params', 0):,} parameters",
        f"- **Strategy:** `{metrics['strategy']}`{_auto_choice(metrics)}; task: {kind}",
        *_data_lines(config.get("data") or {}, extra.get("class_names") or [], extra.get("split_counts")),
        "",
        "## Metrics",
        "",
        *metrics_table(final),
        "",
        *_stage_lines(metrics.get("stages") or {}, str(metrics.get("optimized_metric"))),
        *_selection_lines(metrics.get("selection"), len(metrics.get("stages") or {})),
        "",
        "## Use it",
        "",
        *usage_lines(run_dir, bool(extra.get("has_model")), bool(extra.get("multi_task"))),
    ]
    pre = extra.get("preprocessing")
    if pre:
        how = (
            f"shorter side resized to {pre['resize']} px ({pre['interpolation']}), centre-cropped to "
            f"{pre['image_size']}"
            if pre["geometry"] == "crop"
            else f"resized whole to {pre['image_size']}×{pre['image_size']} ({pre['interpolation']})"
        )
        mode = "Grey (L)" if pre["mode"] == "L" else pre["mode"]
        lines += [
            "",
            "## Preprocessing",
            "",
            f"{mode} images, {how}, scaled to [0, 1], normalised with mean {list(pre['mean'])} and std "
            f"{list(pre['std'])}. `predict` applies exactly this; `export` builds it into the graph.",
        ]
    lines += ["", "Files: " + ", ".join(f"`{f}`" for f in metrics.get("files", [])), ""]
    return "\n".join(lines)


def write_model_card(run_dir: Path, text: str) -> Path:
    """Write ``README.md`` atomically (temp file, then rename)."""
    path = Path(run_dir) / MODEL_CARD_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _auto_choice(metrics: dict[str, Any]) -> str:
    """`` (chose lp_ft: <reasons>)`` for a ``strategy=auto`` run, else nothing."""
    choice = metrics.get("strategy_choice")
    if not choice:
        return ""
    return f" (chose `{choice['recipe']}`: {'; '.join(choice['reasons'])})"
