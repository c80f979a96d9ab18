"""Run results: ``metrics.json`` (written atomically) and the short table printed at the end of a run."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file and rename it over ``path`` so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value) if value is not None else "-"


def format_summary(metrics: dict[str, Any]) -> str:
    """The end-of-run table: one row per stage, then the final metrics and where the outputs are.

    Args:
        metrics: The content of ``metrics.json``.

    Returns:
        Multi-line text.
    """
    monitor = str(metrics.get("optimized_metric") or "val/acc")  # the stage's best epoch is chosen on it
    tested = "test/" + monitor.split("/", 1)[1] if monitor.startswith("val/") else "test/acc"
    selection = metrics.get("selection") or {}
    rows = [("stage", "epochs", f"best {monitor}", f"carried {monitor}", tested, "seconds")]
    for name, m in metrics["stages"].items():
        epochs = str(m["epochs"])
        if m.get("early_stop"):  # a callback stopped a step early: say so where the epochs are counted
            epochs += f" of {m.get('planned_epochs', '?')} (stopped early)"
        carried = m.get("carried") or {}
        value = (carried.get("val") or {}).get(monitor, m.get(monitor))
        shown = _fmt(value) + (" (EMA)" if carried.get("weights") == "ema" else "")
        shown += " ← final" if selection.get("stage") == name and len(metrics["stages"]) > 1 else ""
        rows.append((name, epochs, _fmt(m.get(monitor)), shown, _fmt(m.get(tested)), f"{m['seconds']:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"transferlab: run finished in {metrics['seconds']:.1f} s → {metrics['run_dir']}"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    final = metrics["final"]
    lines.append("  final: " + "  ".join(f"{k} {_fmt(v)}" for k, v in final.items()))
    if selection.get("stage") and len(metrics["stages"]) > 1:
        lines.append(f"  final model: stage {selection['stage']} ({selection.get('reason', '')})")
    for name, m in metrics["stages"].items():
        for stop in m.get("early_stop") or []:
            lines.append(f"  early stop: {name} step {stop.get('step')}: {stop.get('reason')}")
    lines.append(f"  outputs: {', '.join(metrics['files'])}")
    lines.append(f"  dashboards: tensorboard --logdir {metrics['run_dir']}")
    return "\n".join(lines)
