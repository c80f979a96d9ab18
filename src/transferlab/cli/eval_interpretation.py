"""The interpretation of ``transferlab eval``: per-sample outputs of the test pass → tables, gallery, files, summary.

``eval`` runs ``trainer.test`` with a :class:`~transferlab.run.test_outputs.TestOutputsRecorder`; this module
turns what it recorded into the interpretation (``model/interpretation.py``), writes it where
``cli/eval_target.py`` decided (``report/eval_outputs.py``, ``report/gallery.py``) and prints the summary.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transferlab.cli.eval_target import EvalTarget
from transferlab.data.transforms import normalization
from transferlab.model.interpretation import TOP_LOSSES, SampleOutputs, interpret
from transferlab.model.tasks.multilabel import MultiLabelTask
from transferlab.report.eval_outputs import FORMAT, log_tensorboard, summary_lines, write_eval_outputs
from transferlab.report.gallery import display_image
from transferlab.run.assembly import RunParts
from transferlab.run.test_outputs import TestOutputsRecorder
from transferlab.rundir.layout import TOP_LOSSES_FILE

#: Rows of the per-class table printed when nothing is written (the rest: --output-dir's per_class.csv).
PRINTED_ROWS = 30


def sample_outputs(recorder: TestOutputsRecorder, parts: RunParts) -> SampleOutputs:
    """The recorded test pass with the test split's ids, class names and (multi-label) saved thresholds."""
    data, task = parts.data, parts.module.task
    dataset = data.test_set
    members = getattr(data, "members", None)
    ids = members["test"] if members else [f"test/{i}" for i in range(len(dataset))]  # sets without ids: positions
    thresholds = task.thresholds() if isinstance(task, MultiLabelTask) else None  # the saved head.thresholds
    return recorder.outputs(ids, dataset, task.class_names, thresholds)


def _gallery_images(parts: RunParts, record: Mapping[str, Any]) -> list[Any]:
    """The top-loss samples as the model saw them (the test split's own tensors), as displayable pixels."""
    mean, std = normalization(parts.module.backbone.data_config)
    dataset = parts.data.test_set
    return [display_image(dataset[row["index"]][0], mean, std) for row in record["top_losses"]]


def _print_tables(record: Mapping[str, Any]) -> None:
    """The per-class table and the top losses, for an evaluation that writes no files."""
    rows = record["per_class"]

    def cell(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    width = max([5, *(len(str(r["name"])) for r in rows[:PRINTED_ROWS])])
    print(f"  {'class':<{width}}  support  precision  recall  f1")
    for r in rows[:PRINTED_ROWS]:
        print(
            f"  {r['name']:<{width}}  {r['support']:>7}  {cell(r['precision']):>9}  {cell(r['recall']):>6}  "
            f"{cell(r['f1'])}"
        )
    if len(rows) > PRINTED_ROWS:
        print(f"  … {len(rows) - PRINTED_ROWS} more (all of them in per_class.csv with --output-dir)")
    print("  top losses (id: true → predicted, loss):")
    for r in record["top_losses"][:10]:
        print(f"    {r['id']}: {r['true']} → {r['predicted']}, {r['loss']:.3f}")


def interpret_test(
    target: EvalTarget,
    recorder: TestOutputsRecorder,
    parts: RunParts,
    header: Mapping[str, Any],
    top_k: int = TOP_LOSSES,
) -> dict[str, Any]:
    """Interpret the recorded test pass; write its files (and TensorBoard events) or print its tables; summarise.

    Args:
        target: Where to write (``folder`` ``None``: print only).
        recorder: The callback that watched ``trainer.test``.
        parts: The evaluated model and data.
        header: What was tested (model, data, split, the metrics of the pass), first in ``interpretation.json``.
        top_k: How many top losses (the gallery's images).

    Returns:
        The ``interpretation.json`` record.
    """
    outputs = sample_outputs(recorder, parts)
    record = {"format": FORMAT, "label": target.label, **header, **interpret(outputs, top_k)}
    for line in summary_lines(record):
        print(line)
    if target.folder is None:
        _print_tables(record)
        print(f"  {target.note}", file=sys.stderr)
        return record
    images = _gallery_images(parts, record) if record["top_losses"] else []
    count = f"top {len(images)} losses" if len(images) > 1 else "the top loss"
    heading = f"{count}: {header.get('tested_on', header.get('split'))}"
    written = write_eval_outputs(target.folder, record, outputs, images, heading)
    gallery = target.folder / TOP_LOSSES_FILE if images else None
    events = log_tensorboard(target.folder, record, gallery)
    names = ", ".join(Path(p).name for p in written)
    print(f"  written to {target.folder}: {names}" + (", TensorBoard events" if events else ""))
    return record
