"""What one ``transferlab eval`` writes besides its metrics, and the summary it prints.

``interpretation.json``, ``per_class.csv``, ``predictions.csv``, the gallery PNG and TensorBoard events (the
gallery as an image, the tables as text).

Every file is written to a temp name and renamed, so a crash leaves the old file or the new one, never half of
one. The folder is ``<run>/eval/<label>/`` (``rundir/layout.py``) or ``--output-dir``; TensorBoard shows its
events as a run of their own (``eval/<label>``) beside the run's ``tensorboard/<run name>``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferlab.model.interpretation import SampleOutputs
from transferlab.report.gallery import top_losses_gallery
from transferlab.report.render import write_csv, write_text_atomic
from transferlab.rundir.layout import (
    EVENTS_PATTERN,
    INTERPRETATION_FILE,
    PER_CLASS_FILE,
    PREDICTIONS_FILE,
    TOP_LOSSES_FILE,
)

FORMAT = 1
PER_CLASS_COLUMNS = ("name", "support", "predicted", "correct", "precision", "recall", "f1")


def plain(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` and numpy scalars as Python ones (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def per_class_rows(rows: Sequence[dict[str, Any]], multi_label: bool) -> tuple[list[str], list[list[Any]]]:
    """``per_class.csv``: one row per class (label), its counts and scores; empty cells where undefined."""
    header = [*PER_CLASS_COLUMNS, *(["threshold"] if multi_label else [])]
    table = []
    for r in rows:
        cells = [r["name"], r["support"], r["predicted"], r["correct"]]
        cells += [_number(r[k]) for k in ("precision", "recall", "f1")]
        table.append(cells + ([_number(r["threshold"])] if multi_label else []))
    return header, table


def prediction_rows(outputs: SampleOutputs) -> tuple[list[str], list[list[Any]]]:
    """``predictions.csv``: one row per sample: id, true, predicted, correct, loss, then each class's probability.

    Single-label rows add ``p_true`` and ``p_predicted``; multi-label ``true``/``predicted`` list the labels
    joined by ``;`` and the probabilities are the sigmoids (decided at the thresholds in ``interpretation.json``).
    """
    names = outputs.names
    header = ["id", "true", "predicted", "correct", "loss"]
    if not outputs.multi_label:
        header += ["p_true", "p_predicted"]
    header += [f"p_{n}" for n in names]
    correct = outputs.correct
    table = []
    for i, sample in enumerate(outputs.ids):
        p = outputs.probabilities[i]
        if outputs.multi_label:
            true = ";".join(names[j] for j in np.flatnonzero(outputs.targets[i] > 0.5))
            predicted = ";".join(names[j] for j in np.flatnonzero(outputs.predicted[i]))
            cells = [sample, true, predicted, int(correct[i]), _number(float(outputs.losses[i]))]
        else:
            t, q = int(outputs.targets[i]), int(outputs.predicted[i])
            cells = [sample, names[t], names[q], int(correct[i]), _number(float(outputs.losses[i]))]
            cells += [_number(float(p[t])), _number(float(p[q]))]
        table.append(cells + [_number(float(v)) for v in p])
    return header, table


def markdown_per_class(rows: Sequence[dict[str, Any]]) -> str:
    """The per-class table as Markdown (TensorBoard's Text tab renders it); ``–`` where a score is undefined."""

    def cell(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    lines = ["| class | support | predicted | precision | recall | F1 |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        name = str(r["name"]).replace("|", "\\|")
        scores = " | ".join(cell(r[k]) for k in ("precision", "recall", "f1"))
        lines.append(f"| {name} | {r['support']} | {r['predicted']} | {scores} |")
    return "\n".join(lines)


def confused_text(record: Mapping[str, Any], n: int = 5) -> str:
    """The ``n`` most-confused pairs (``7 → 1 ×4``) or, multi-label, most frequent label errors, on one line."""
    rows = record["most_confused"][:n]
    if not rows:
        return "none"
    if record["kind"] == "multi_label":
        return ", ".join(f"{r['label']} {r['error']} ×{r['count']}" for r in rows)
    return ", ".join(f"{r['true']} → {r['predicted']} ×{r['count']}" for r in rows)


def worst_text(record: Mapping[str, Any], n: int = 5) -> str:
    """The ``n`` classes with the lowest F1: ``8 0.412 (n=35)``."""
    by_name = {r["name"]: r for r in record["per_class"]}
    rows = [by_name[name] for name in record["worst_classes"][:n]]
    return ", ".join(f"{r['name']} {r['f1']:.3f} (n={r['support']})" for r in rows) or "none"


def summary_lines(record: Mapping[str, Any]) -> list[str]:
    """What the terminal shows of an interpretation: the most confused, the worst classes by F1."""
    what = "most frequent errors" if record["kind"] == "multi_label" else "most confused (true → predicted)"
    unit = "labels" if record["kind"] == "multi_label" else "classes"
    return [f"  {what}: {confused_text(record)}", f"  worst {unit} by F1: {worst_text(record)}"]


def write_eval_outputs(
    folder: Path, record: Mapping[str, Any], outputs: SampleOutputs, images: Sequence[np.ndarray], heading: str
) -> list[Path]:
    """Write the four files of an evaluation into ``folder`` (made if missing); return their paths.

    Args:
        folder: The evaluation's folder.
        record: The ``interpretation.json`` content (:func:`transferlab.model.interpretation.interpret` plus what
            was tested and its metrics).
        outputs: The per-sample outputs (``predictions.csv``).
        images: Displayable pixels of the top-loss samples, in ``record["top_losses"]`` order (the gallery).
        heading: The gallery's title.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    multi = record["kind"] == "multi_label"
    text = json.dumps(plain(record), indent=2, allow_nan=False) + "\n"
    written = [write_text_atomic(folder / INTERPRETATION_FILE, text)]
    written.append(write_csv(folder / PER_CLASS_FILE, *per_class_rows(record["per_class"], multi)))
    written.append(write_csv(folder / PREDICTIONS_FILE, *prediction_rows(outputs)))
    if images:
        written.append(top_losses_gallery(images, record["top_losses"], folder / TOP_LOSSES_FILE, heading))
    return written


def log_tensorboard(folder: Path, record: Mapping[str, Any], gallery: Path | None, step: int = 0) -> list[Path]:
    """Write the evaluation's TensorBoard events into ``folder``: the gallery image, the tables as text.

    Events of an earlier evaluation in ``folder`` are removed first (the caller checked ``--force``), so
    TensorBoard shows one evaluation per folder.

    Returns:
        The event files written.
    """
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(folder)
    for old in folder.glob(EVENTS_PATTERN):
        old.unlink()
    writer = SummaryWriter(log_dir=str(folder))
    try:
        if gallery is not None:
            from PIL import Image

            with Image.open(gallery) as image:
                pixels = np.asarray(image.convert("RGB"))
            writer.add_image("eval/top_losses", pixels, step, dataformats="HWC")
        writer.add_text("eval/per_class", markdown_per_class(record["per_class"]), step)
        lines = [f"- {line.strip()}" for line in summary_lines(record)]
        accuracy = record.get("accuracy")
        if accuracy is not None:
            lines.insert(0, f"- {record['samples']} samples, {record['correct']} right ({accuracy:.4f})")
        writer.add_text("eval/summary", "\n".join(lines), step)
    finally:
        writer.close()
    return sorted(folder.glob(EVENTS_PATTERN))
