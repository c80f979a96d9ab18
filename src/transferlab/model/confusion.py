"""Test-time confusion matrix: per-class accuracy and the image shown in TensorBoard's Images tab."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def per_class_accuracy(confusion: torch.Tensor) -> list[float | None]:
    """Recall of each class (row = true class); ``None`` for a class with no test samples."""
    counts = confusion.sum(dim=1)
    correct = confusion.diagonal()
    pairs = zip(correct.tolist(), counts.tolist(), strict=True)
    return [None if int(n) == 0 else float(c) / float(n) for c, n in pairs]


def scalar_name(name: str) -> str:
    """A class name made safe for a TensorBoard tag (``/`` would make sub-folders)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name)) or "_"


def confusion_figure(confusion: torch.Tensor, class_names: Sequence[str], title: str = "test confusion matrix") -> Any:
    """A matplotlib figure of the confusion matrix: counts in the cells, rows normalised for the colour.

    Args:
        confusion: ``(C, C)`` counts, rows = true class, columns = predicted class.
        class_names: ``C`` labels.
        title: Figure title.

    Returns:
        A ``matplotlib.figure.Figure`` (rendered off-screen with the Agg canvas).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = confusion.detach().cpu().to(torch.int64)
    n = counts.shape[0]
    rows = counts.sum(dim=1, keepdim=True).clamp(min=1)
    normalised = (counts.double() / rows).numpy()
    size = min(12.0, 2.0 + 0.45 * n)
    fig = Figure(figsize=(size, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    labels = [str(c) for c in class_names] if len(class_names) == n else [str(i) for i in range(n)]
    ax.set_xticks(range(n), labels, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:  # numbers stay readable up to ~30 classes
        for i in range(n):
            for j in range(n):
                value = int(counts[i, j])
                if value:
                    colour = "white" if normalised[i, j] > 0.5 else "black"
                    ax.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=8)
    fig.tight_layout()
    return fig
