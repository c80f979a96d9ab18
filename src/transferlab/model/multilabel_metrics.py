"""Multi-label metrics on ``(N, L)`` scores and 0/1 targets: average precision, F1 and the thresholds that tune it.

Pure numpy (float64 counts), so every number is checked against scikit-learn on fixed predictions:

* :func:`average_precision` is scikit-learn's ``average_precision_score`` of one label: ``Σ_k (R_k − R_{k−1})
  P_k`` over the distinct scores in decreasing order (tied scores form one threshold). :func:`mean_average_precision`
  averages it over the labels that have at least one positive; a label without positives has no defined AP
  (scikit-learn warns and scores it 0), so it is left out rather than pulling the mean down.
* F1 counts predictions ``score ≥ threshold``; micro-F1 is ``2ΣTP / (2ΣTP + ΣFP + ΣFN)``, macro-F1 the mean over
  all labels of each label's F1, with 0 where a label has neither positives nor predictions (scikit-learn's
  ``f1_score(average=..., zero_division=0)``). Subset accuracy counts rows predicted exactly.
* :func:`tune_thresholds` picks, on validation scores, the threshold(s) that maximise F1: per label (each label's
  own F1) or one global threshold (micro-F1). Candidates are the midpoints between consecutive distinct scores
  (with 0 and 1 as outer bounds, so "every sample positive" is a candidate too) and 0.5. Among candidates of
  equal F1 the one closest to 0.5 wins (the lower one on an exact tie of distance): 0.5 is kept unless another
  threshold is strictly better, so a label whose F1 is 0 everywhere (no positives) keeps 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

ThresholdMode = Literal["per_label", "global"]
DEFAULT_THRESHOLD = 0.5


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """``2TP / (2TP + FP + FN)``, 0 where the denominator is 0 (scikit-learn's ``zero_division=0``)."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float | None:
    """Average precision of one label (scikit-learn's definition); ``None`` when it has no positive.

    Args:
        scores: ``(N,)`` scores, higher = more likely positive.
        targets: ``(N,)`` 0/1 targets.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(targets) > 0.5
    total = int(positive.sum())
    if total == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], positive[order]
    # the last index of every run of tied scores: one threshold per distinct score
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last].astype(np.float64)
    precision = tp / (last + 1)
    recall = tp / total
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def per_label_average_precision(scores: np.ndarray, targets: np.ndarray) -> list[float | None]:
    """:func:`average_precision` of every label (column); ``None`` for labels without positives."""
    return [average_precision(scores[:, j], targets[:, j]) for j in range(scores.shape[1])]


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Macro AP over the labels with at least one positive (NaN when no label has one)."""
    present = [ap for ap in per_label_average_precision(scores, targets) if ap is not None]
    return float(np.mean(present)) if present else float("nan")


def confusion_counts(
    scores: np.ndarray, targets: np.ndarray, thresholds: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-label ``(TP, FP, FN)`` of the predictions ``scores ≥ thresholds`` (thresholds broadcast over rows)."""
    predicted = np.asarray(scores) >= np.asarray(thresholds)
    positive = np.asarray(targets) > 0.5
    tp = (predicted & positive).sum(axis=0)
    fp = (predicted & ~positive).sum(axis=0)
    fn = (~predicted & positive).sum(axis=0)
    return tp, fp, fn


def f1_scores(scores: np.ndarray, targets: np.ndarray, thresholds: np.ndarray | float) -> dict[str, float]:
    """``micro_f1``, ``macro_f1`` and ``subset_acc`` of the predictions ``scores ≥ thresholds``."""
    tp, fp, fn = confusion_counts(scores, targets, thresholds)
    micro = float(_f1(tp.sum(), fp.sum(), fn.sum()))
    macro = float(_f1(tp, fp, fn).mean()) if len(tp) else float("nan")
    exact = (np.asarray(scores) >= np.asarray(thresholds)) == (np.asarray(targets) > 0.5)
    subset = float(exact.all(axis=1).mean()) if len(exact) else float("nan")
    return {"micro_f1": micro, "macro_f1": macro, "subset_acc": subset}


def multilabel_scores(scores: np.ndarray, targets: np.ndarray, thresholds: np.ndarray | float) -> dict[str, float]:
    """``map`` (see :func:`mean_average_precision`) and the F1 scores at ``thresholds`` (:func:`f1_scores`)."""
    return {"map": mean_average_precision(scores, targets), **f1_scores(scores, targets, thresholds)}


def _candidates(scores: np.ndarray) -> np.ndarray:
    """Midpoints between consecutive distinct scores (0 and 1 as outer bounds) and 0.5, as float32 values.

    Cast to float32 before they are scored: the F1 chosen is that of the threshold the head stores.
    """
    distinct = np.unique(np.concatenate([[0.0], np.asarray(scores, dtype=np.float64).ravel(), [1.0]]))
    mids = (distinct[:-1] + distinct[1:]) / 2
    return np.unique(np.r_[mids, DEFAULT_THRESHOLD, 0.0].astype(np.float32)).astype(np.float64)


def _best(candidates: np.ndarray, f1: np.ndarray) -> float:
    """The candidate of highest F1; ties go to the one closest to 0.5, then to the lower one."""
    top = f1 == f1.max()
    tied = candidates[top]
    distance = np.abs(tied - DEFAULT_THRESHOLD)
    return float(tied[np.lexsort((tied, distance))[0]])


def _counts_at(scores: np.ndarray, positive: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(TP, FP, FN)`` of ``scores ≥ t`` for every candidate ``t`` (binary search on the sorted scores)."""
    pos = np.sort(scores[positive])
    neg = np.sort(scores[~positive])
    tp = len(pos) - np.searchsorted(pos, candidates, side="left")
    fp = len(neg) - np.searchsorted(neg, candidates, side="left")
    return tp, fp, len(pos) - tp


def best_threshold(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """The threshold that maximises the F1 of ``scores ≥ t`` on these (flattened) scores, and that F1."""
    s = np.asarray(scores, dtype=np.float32).astype(np.float64).ravel()
    positive = np.asarray(targets).ravel() > 0.5
    candidates = _candidates(s)
    f1 = _f1(*_counts_at(s, positive, candidates))
    threshold = _best(candidates, f1)
    return threshold, float(f1[candidates == threshold][0])


def tune_thresholds(scores: np.ndarray, targets: np.ndarray, mode: ThresholdMode = "per_label") -> np.ndarray:
    """Decision thresholds ``(L,)`` that maximise F1 on ``scores`` (see the module docstring).

    Args:
        scores: ``(N, L)`` validation scores (probabilities).
        targets: ``(N, L)`` 0/1 validation targets.
        mode: ``per_label``: each label's own F1; ``global``: one threshold for every label, maximising micro-F1.

    Returns:
        float32 thresholds, one per label (all equal for ``global``); 0.5 everywhere when ``N == 0``.

    Raises:
        ValueError: For another ``mode``.
    """
    scores, targets = np.asarray(scores), np.asarray(targets)
    labels = scores.shape[1]
    if len(scores) == 0:
        return np.full(labels, DEFAULT_THRESHOLD, dtype=np.float32)
    if mode == "global":
        return np.full(labels, best_threshold(scores, targets)[0], dtype=np.float32)
    if mode != "per_label":
        raise ValueError(f"threshold mode {mode!r}: expected 'per_label' or 'global'")
    return np.array([best_threshold(scores[:, j], targets[:, j])[0] for j in range(labels)], dtype=np.float32)


def per_label_report(
    scores: np.ndarray, targets: np.ndarray, thresholds: np.ndarray, names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per label: ``ap`` (``None`` without positives), ``f1``, ``precision``, ``recall``, ``support``, ``threshold``.

    Precision and recall are 0 where undefined (no prediction, no positive), as scikit-learn's ``zero_division=0``.
    """
    tp, fp, fn = (c.astype(np.float64) for c in confusion_counts(scores, targets, thresholds))
    predicted, support = tp + fp, tp + fn
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = _f1(tp, fp, fn)
    aps = per_label_average_precision(scores, targets)
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (len(names),))
    return {
        str(name): {
            "ap": aps[j],
            "f1": float(f1[j]),
            "precision": float(precision[j]),
            "recall": float(recall[j]),
            "support": int(support[j]),
            "threshold": float(thresholds[j]),
        }
        for j, name in enumerate(names)
    }
