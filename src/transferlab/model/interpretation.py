"""Interpreting a model's errors on a tested split: per-class scores, most-confused pairs, top losses.

The counterpart of fastai's ``ClassificationInterpretation``, as pure functions of per-sample arrays (numpy), so
each is tested against hand-computed values and scikit-learn. What ``transferlab eval`` collects from the test
pass (:class:`SampleOutputs`) goes in; plain data (JSON-ready: ``None`` where a score is undefined) comes out.

Undefined scores are ``None``, never a silent 0: a class with no sample in the split (support 0) has no
precision, recall or F1 (its ``predicted`` count still says how often it was wrongly predicted); a class that is
never predicted has no precision. F1 is ``2·tp / (2·tp + fp + fn)``, so a present class never predicted scores
0, and the mean F1 over the present classes is the task's ``test/macro_f1``.

Multi-label outputs are decided per label at the saved thresholds (``probability >= threshold``, as the task
does); "most confused" there is the most frequent false positives and false negatives per label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: How many rows the interpretation keeps by default (fastai shows the top few too).
TOP_LOSSES = 16
MOST_CONFUSED = 10


@dataclass(frozen=True)
class SampleOutputs:
    """Per-sample outputs of one tested split, index-aligned with its samples.

    Attributes:
        ids: The samples' stable ids (a data module's ``members["test"]``: file paths, ``digits/<n>``).
        names: Class (or label) names, index-aligned with the columns of ``probabilities``.
        probabilities: ``(N, C)``: softmax of the logits (single-label) or one sigmoid per label.
        losses: ``(N,)`` per-sample loss: cross-entropy, or the BCE averaged over the labels.
        targets: ``(N,)`` class indices, or ``(N, C)`` 0/1 (multi-label).
        predicted: ``(N,)`` class indices (the logits' argmax), or ``(N, C)`` bool (at the thresholds).
        thresholds: ``(C,)`` decision thresholds of a multi-label head; ``None`` for single-label.

    Raises:
        ValueError: When the arrays disagree in length or width (a programming error).
    """

    ids: list[str]
    names: list[str]
    probabilities: np.ndarray
    losses: np.ndarray
    targets: np.ndarray
    predicted: np.ndarray
    thresholds: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, c = len(self.ids), len(self.names)
        shapes = {
            "probabilities": (self.probabilities.shape, (n, c)),
            "losses": (self.losses.shape, (n,)),
            "targets": (self.targets.shape, (n, c) if self.multi_label else (n,)),
            "predicted": (self.predicted.shape, (n, c) if self.multi_label else (n,)),
        }
        for what, (got, want) in shapes.items():
            if tuple(got) != want:
                raise ValueError(f"{what} of shape {tuple(got)}, expected {want} for {n} samples and {c} outputs")

    @property
    def multi_label(self) -> bool:
        """Whether the outputs are one sigmoid per label, decided by thresholds."""
        return self.thresholds is not None

    @property
    def correct(self) -> np.ndarray:
        """``(N,)`` bool: the prediction is right (multi-label: every label right, the subset accuracy's)."""
        if self.multi_label:
            return np.all(self.predicted == (self.targets > 0.5), axis=1)
        return self.predicted == self.targets


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den > 0 else None


def confusion_matrix(targets: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts, rows = true class, columns = predicted class (scikit-learn's layout)."""
    t, p = np.asarray(targets, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _score_row(name: str, tp: int, fp: int, fn: int, **extra: Any) -> dict[str, Any]:
    """One class's counts and scores; ``None`` where undefined (see the module docstring)."""
    support, predicted = tp + fn, tp + fp
    present = support > 0
    return {
        "name": name,
        "support": int(support),
        "predicted": int(predicted),
        "correct": int(tp),
        **extra,
        "precision": _ratio(tp, predicted) if present else None,
        "recall": _ratio(tp, support),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn) if present else None,
    }


def per_class_scores(confusion: np.ndarray, names: Sequence[str]) -> list[dict[str, Any]]:
    """Per class: ``support``, ``predicted``, ``correct``, ``precision``, ``recall``, ``f1`` (``None``: undefined).

    Args:
        confusion: ``(C, C)`` counts, rows = true class.
        names: The ``C`` class names.
    """
    c = np.asarray(confusion, dtype=np.int64)
    tp = np.diagonal(c)
    fp, fn = c.sum(axis=0) - tp, c.sum(axis=1) - tp
    return [_score_row(str(n), int(tp[i]), int(fp[i]), int(fn[i])) for i, n in enumerate(names)]


def most_confused(
    confusion: np.ndarray, names: Sequence[str], min_val: int = 1, top: int | None = MOST_CONFUSED
) -> list[dict[str, Any]]:
    """The off-diagonal cells with at least ``min_val`` samples, most frequent first (fastai's ``most_confused``).

    Ties keep the matrix order (by true class, then predicted class), so the list is deterministic.

    Returns:
        ``{"true": name, "predicted": name, "count": n}`` rows, at most ``top`` (all with ``top=None``).
    """
    c = np.asarray(confusion, dtype=np.int64).copy()
    np.fill_diagonal(c, 0)
    rows, cols = np.nonzero(c >= max(1, min_val))
    order = sorted(range(len(rows)), key=lambda k: (-c[rows[k], cols[k]], rows[k], cols[k]))
    pairs = [
        {"true": str(names[rows[k]]), "predicted": str(names[cols[k]]), "count": int(c[rows[k], cols[k]])}
        for k in order
    ]
    return pairs if top is None else pairs[:top]


def per_label_scores(
    targets: np.ndarray, predicted: np.ndarray, thresholds: np.ndarray, names: Sequence[str]
) -> list[dict[str, Any]]:
    """Per label at its threshold: ``threshold``, counts and ``precision``, ``recall``, ``f1`` (``None``: undefined).

    Args:
        targets: ``(N, L)`` 0/1.
        predicted: ``(N, L)`` bool decisions.
        thresholds: ``(L,)`` the thresholds the decisions were taken at (reported beside the scores).
        names: The ``L`` label names.
    """
    positive, decided = np.asarray(targets) > 0.5, np.asarray(predicted, dtype=bool)
    tp = (positive & decided).sum(axis=0)
    fp = (~positive & decided).sum(axis=0)
    fn = (positive & ~decided).sum(axis=0)
    return [
        _score_row(str(n), int(tp[j]), int(fp[j]), int(fn[j]), threshold=float(thresholds[j]))
        for j, n in enumerate(names)
    ]


def label_errors(
    targets: np.ndarray, predicted: np.ndarray, names: Sequence[str], top: int | None = MOST_CONFUSED
) -> list[dict[str, Any]]:
    """A multi-label model's most frequent errors: false positives and false negatives per label, most first.

    Returns:
        ``{"label": name, "error": "false positive" | "false negative", "count": n}`` rows with ``n > 0``, at most
        ``top``; ties by label order, false positives first.
    """
    positive, decided = np.asarray(targets) > 0.5, np.asarray(predicted, dtype=bool)
    counts = {"false positive": (~positive & decided).sum(axis=0), "false negative": (positive & ~decided).sum(axis=0)}
    rows = [
        (int(n[j]), j, k, kind) for k, (kind, n) in enumerate(counts.items()) for j in range(len(names)) if n[j] > 0
    ]
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))
    errors = [{"label": str(names[j]), "error": kind, "count": n} for n, j, _, kind in rows]
    return errors if top is None else errors[:top]


def worst_classes(rows: Sequence[dict[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` classes with the lowest F1 (classes without an F1 left out); ties: more support first."""
    scored = [r for r in rows if r["f1"] is not None]
    return sorted(scored, key=lambda r: (r["f1"], -r["support"], r["name"]))[:n]


def top_loss_indices(losses: np.ndarray, k: int = TOP_LOSSES) -> np.ndarray:
    """Indices of the ``k`` highest losses, highest first; ties keep the sample order (a stable sort)."""
    order = np.argsort(-np.asarray(losses, dtype=np.float64), kind="stable")
    return order[: max(0, k)]


def _labels(row: np.ndarray, names: Sequence[str]) -> list[str]:
    return [str(names[j]) for j in np.flatnonzero(row)]


def top_losses(outputs: SampleOutputs, k: int = TOP_LOSSES) -> list[dict[str, Any]]:
    """The ``k`` samples with the highest loss, highest first.

    Single-label rows: ``index``, ``id``, ``true``, ``predicted``, ``p_predicted`` (the probability of the predicted
    class), ``p_true`` (of the true class), ``loss``. Multi-label rows: ``true`` and ``predicted`` are lists of
    labels, ``worst_label`` is the label with the largest BCE term and ``p_worst`` its probability.
    """
    names, p = outputs.names, outputs.probabilities
    out = []
    for i in top_loss_indices(outputs.losses, k):
        row: dict[str, Any] = {"index": int(i), "id": outputs.ids[i]}
        if outputs.multi_label:
            positive = outputs.targets[i] > 0.5
            # each label's BCE term: the one the model got most wrong explains the loss
            terms = -np.log(np.clip(np.where(positive, p[i], 1.0 - p[i]), 1e-12, 1.0))
            worst = int(np.argmax(terms))
            row |= {
                "true": _labels(positive, names),
                "predicted": _labels(outputs.predicted[i], names),
                "worst_label": str(names[worst]),
                "p_worst": float(p[i, worst]),
            }
        else:
            t, q = int(outputs.targets[i]), int(outputs.predicted[i])
            row |= {
                "true": str(names[t]),
                "predicted": str(names[q]),
                "p_predicted": float(p[i, q]),
                "p_true": float(p[i, t]),
            }
        row["loss"] = float(outputs.losses[i])
        out.append(row)
    return out


def interpret(
    outputs: SampleOutputs, top_k: int = TOP_LOSSES, confused: int = MOST_CONFUSED, min_val: int = 1
) -> dict[str, Any]:
    """Everything the interpretation reports, as plain data.

    Args:
        outputs: The split's per-sample outputs.
        top_k: How many top losses.
        confused: How many most-confused pairs (or label errors).
        min_val: The fewest samples a confused pair needs (fastai's ``min_val``).

    Returns:
        ``kind`` (``single_label`` / ``multi_label``), ``samples``, ``accuracy`` (the share of samples right: the
        task's ``test/acc``, or its ``test/subset_acc`` for multi-label), ``per_class``, ``most_confused``,
        ``worst_classes`` (by F1), ``top_losses``; multi-label adds ``thresholds``.
    """
    names = outputs.names
    n = len(outputs.ids)
    if outputs.multi_label:
        assert outputs.thresholds is not None  # for the type checker: multi_label says so
        rows = per_label_scores(outputs.targets, outputs.predicted, outputs.thresholds, names)
        errors = label_errors(outputs.targets, outputs.predicted, names, confused)
        extra: dict[str, Any] = {"thresholds": dict(zip(names, map(float, outputs.thresholds), strict=True))}
    else:
        matrix = confusion_matrix(outputs.targets, outputs.predicted, len(names))
        rows = per_class_scores(matrix, names)
        errors = most_confused(matrix, names, min_val, confused)
        extra = {"confusion_matrix": matrix.tolist()}
    return {
        "kind": "multi_label" if outputs.multi_label else "single_label",
        "samples": n,
        "correct": int(outputs.correct.sum()),
        "accuracy": _ratio(int(outputs.correct.sum()), n),
        "mean_loss": float(np.mean(outputs.losses)) if n else None,
        "per_class": rows,
        "most_confused": errors,
        "worst_classes": [r["name"] for r in worst_classes(rows)],
        "top_losses": top_losses(outputs, top_k),
        **extra,
    }
