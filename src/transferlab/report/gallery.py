"""The top-losses gallery: the images a model got most wrong, as it saw them, titled with what it said.

Images come from the tested split exactly as its loader serves them: normalised float tensors (in-memory sets,
live decoding) or uint8 tensors (the decoded-image cache, normalised later on the device). Both are turned back
into displayable pixels here: uint8 / 255, or ``x · std + mean`` with the backbone's statistics
(:func:`~transferlab.data.transforms.normalization`). Like the report plots, the PNG carries its numbers as JSON
in a ``transferlab`` text chunk (:func:`~transferlab.report.plots.read_plot_data`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab.report.plots import METADATA_KEY

#: At most this many images per row: 4 keeps each title readable on a laptop screen.
COLUMNS = 4
#: Class names longer than this are cut (with an ellipsis) so that titles fit their image.
NAME_CHARS = 18
_DPI = 100
_CELL_W, _CELL_H = 2.3, 2.95  # inches per image, its three-line title included
_GAP = 0.05  # inches between an image and its cell's edge
_HEADING, _MARGIN = 0.6, 0.1  # inches: the two-line heading at the top; the edges
_MIN_WIDTH = 5.6  # inches: the heading fits even above one image


def display_image(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """One image as the model saw it → float pixels in ``[0, 1]``: ``(H, W)`` grey or ``(H, W, 3)`` colour.

    Args:
        x: ``(C, H, W)`` uint8 (the decoded-image cache) or normalised float.
        mean: ``(C', 1, 1)`` the backbone's normalisation mean (used for float images only).
        std: Same shape as ``mean``.

    Raises:
        ValueError: For a tensor that is not one ``(C, H, W)`` image.
    """
    if x.ndim != 3:
        raise ValueError(f"expected one (C, H, W) image, got shape {tuple(x.shape)}")
    x = x.detach().cpu()
    # uint8 from the decoded-image cache; else normalised float, undone with the backbone's statistics
    pixels = x.float() / 255.0 if x.dtype == torch.uint8 else x.float() * std.float().cpu() + mean.float().cpu()
    pixels = pixels.clamp(0.0, 1.0)
    channels = pixels.shape[0]
    if channels == 1 or (channels == 3 and bool((pixels[0] == pixels[1]).all() and (pixels[1] == pixels[2]).all())):
        return pixels[0].numpy()  # grey, also when a grey image was expanded to the backbone's three channels
    return pixels[:3].permute(1, 2, 0).numpy()


def short(name: str, chars: int = NAME_CHARS) -> str:
    """``name`` cut to ``chars`` characters with an ellipsis (a long class name must not overrun its image)."""
    name = str(name)
    return name if len(name) <= chars else name[: chars - 1] + "…"


def _names(labels: Sequence[str]) -> str:
    """A set of labels in a title: ``a,b`` (``–`` for none), cut a little longer than a single name."""
    return short(",".join(labels), NAME_CHARS + 4) if labels else "–"


def title(row: dict[str, Any]) -> tuple[str, bool]:
    """The three-line title of a top-loss row (true, predicted, ``p=… · loss …``) and whether it is right.

    True and predicted get a line each, so that two long class names never run into the next image's title. A
    multi-label row shows its errors instead of two long label sets: the labels it ``missed`` (false negatives)
    and the ``extra`` ones (false positives), then the label with the largest loss term.
    """
    if isinstance(row["true"], list):  # multi-label: what it got wrong (full sets: predictions.csv)
        missed = [n for n in row["true"] if n not in row["predicted"]]
        extra = [n for n in row["predicted"] if n not in row["true"]]
        lines = [f"missed: {_names(missed)}", f"extra: {_names(extra)}"]
        lines.append(f"{short(row['worst_label'], 10)} p={row['p_worst']:.2f} · loss {row['loss']:.2f}")
    else:
        lines = [f"true: {short(row['true'])}", f"pred: {short(row['predicted'])}"]
        lines.append(f"p={row['p_predicted']:.2f} · loss {row['loss']:.2f}")
    return "\n".join(lines), row["true"] == row["predicted"]


def grid_shape(count: int, columns: int = COLUMNS) -> tuple[int, int]:
    """``(rows, columns)`` of a gallery of ``count`` images: one row when they fit in it."""
    cols = max(1, min(columns, count))
    return max(1, math.ceil(count / cols)), cols


def top_losses_gallery(
    images: Sequence[np.ndarray], rows: Sequence[dict[str, Any]], path: Path, heading: str, columns: int = COLUMNS
) -> Path:
    """Write the gallery PNG: one image per top-loss row, titled with true, predicted and ``p=… · loss …``.

    Args:
        images: Displayable pixels (:func:`display_image`), one per row.
        rows: Top-loss rows (:func:`transferlab.model.interpretation.top_losses`), highest loss first.
        path: The PNG to write (atomically).
        heading: The figure's title (what was tested).
        columns: Images per row at most.

    Returns:
        ``path``. The PNG's ``transferlab`` text chunk holds ``rows``, ``columns`` and the rows' ids and losses.

    Raises:
        ValueError: For no image, or a different number of images and rows.
    """
    if not images or len(images) != len(rows):
        raise ValueError(f"{len(images)} images for {len(rows)} top-loss rows (need at least one of each)")
    n_rows, n_cols = grid_shape(len(images), columns)
    # Axes placed by hand in inches: a constrained layout with a tight bounding box took 3 s for 16 images;
    # this takes a third of that, and the picture's size follows from the grid alone.
    width = max(_MIN_WIDTH, _CELL_W * n_cols + 2 * _MARGIN)
    height = _HEADING + _CELL_H * n_rows + _MARGIN
    fig = _canvas(width, height)
    left = (width - _CELL_W * n_cols) / 2
    side = _CELL_W - 2 * _GAP
    for k, pixels in enumerate(images):
        row, col = divmod(k, n_cols)
        bottom = height - _HEADING - (row + 1) * _CELL_H + _GAP
        ax = fig.add_axes(((left + col * _CELL_W + _GAP) / width, bottom / height, side / width, side / height))
        ax.set_axis_off()
        # nearest: an 8×8 digit upsampled stays the pixels the model saw, not a blur of them
        ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        text, right = title(rows[k])
        ax.set_title(text, fontsize=9.5, color="tab:green" if right else "tab:red", linespacing=1.15)
    multi = isinstance(rows[0]["true"], list)
    legend = (
        "labels missed, extra labels, the worst label's p · loss" if multi else "true, predicted, p(predicted) · loss"
    )
    fig.suptitle(f"{heading}\ntitles: {legend}; red = wrong", fontsize=11, y=1 - 0.1 / height, va="top")
    data = {
        "rows": n_rows,
        "columns": n_cols,
        "samples": [{"id": r["id"], "true": r["true"], "predicted": r["predicted"], "loss": r["loss"]} for r in rows],
    }
    return _save_png(fig, Path(path), data)


def _canvas(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)  # no pyplot: no global backend, no windows
    return fig


def _save_png(fig: Any, path: Path, data: dict[str, Any]) -> Path:
    """Write the PNG atomically with its numbers in the ``transferlab`` text chunk (as the report plots)."""
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", metadata={METADATA_KEY: json.dumps(data)})
    os.replace(tmp, path)
    return path
