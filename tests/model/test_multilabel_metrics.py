"""Multi-label metrics equal scikit-learn's on fixed predictions; tuned thresholds maximise F1 (ties → 0.5)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, precision_score, recall_score

from transferlab.model.multilabel_metrics import (
    average_precision,
    f1_scores,
    mean_average_precision,
    per_label_report,
    tune_thresholds,
)

# 8 samples × 4 labels: ties in scores (label 0: 0.7 twice, one positive one not; label 2: all 0.4),
# label 3 without positives, a row predicted all negative at 0.5 (row 7)
SCORES = np.array(
    [
        [0.9, 0.2, 0.4, 0.1],
        [0.7, 0.8, 0.4, 0.6],
        [0.7, 0.6, 0.4, 0.2],
        [0.3, 0.55, 0.4, 0.3],
        [0.1, 0.9, 0.4, 0.05],
        [0.6, 0.1, 0.4, 0.7],
        [0.2, 0.3, 0.4, 0.4],
        [0.05, 0.45, 0.4, 0.3],
    ],
    dtype=np.float32,
)
TARGETS = np.array(
    [[1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]],
    dtype=np.float32,
)


def _sk(fn, *args, **kwargs):
    with warnings.catch_warnings():  # scikit-learn warns about the label without positives
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_map_is_sklearn_macro_ap_over_labels_with_positives_ties_included():
    present = TARGETS.sum(0) > 0
    assert not present.all(), "the fixture has a label without positives"
    expected = _sk(average_precision_score, TARGETS[:, present], SCORES[:, present], average="macro")
    assert mean_average_precision(SCORES, TARGETS) == pytest.approx(expected, abs=1e-12)
    for j in np.flatnonzero(present):
        want = _sk(average_precision_score, TARGETS[:, j], SCORES[:, j])
        assert average_precision(SCORES[:, j], TARGETS[:, j]) == pytest.approx(want, abs=1e-12), f"label {j}"
    assert average_precision(SCORES[:, 3], TARGETS[:, 3]) is None, "no positive: no defined AP"
    assert np.isnan(mean_average_precision(SCORES, np.zeros_like(TARGETS))), "no label has a positive"


@pytest.mark.parametrize(
    "thresholds",
    [0.5, np.array([0.65, 0.5, 0.4, 0.5]), np.array([0.4, 0.4, 0.41, 0.9]), 1.5],  # 1.5: all predicted negative
)
def test_f1_and_subset_accuracy_equal_sklearn(thresholds):
    predicted = np.greater_equal(SCORES, thresholds).astype(int)
    got = f1_scores(SCORES, TARGETS, thresholds)
    assert got["micro_f1"] == pytest.approx(_sk(f1_score, TARGETS, predicted, average="micro", zero_division=0))
    assert got["macro_f1"] == pytest.approx(_sk(f1_score, TARGETS, predicted, average="macro", zero_division=0))
    assert got["subset_acc"] == pytest.approx(accuracy_score(TARGETS, predicted))
    report = per_label_report(SCORES, TARGETS, np.broadcast_to(thresholds, (4,)), ["a", "b", "c", "d"])
    per_label = _sk(f1_score, TARGETS, predicted, average=None, zero_division=0)
    for j, name in enumerate("abcd"):
        row = report[name]
        assert row["f1"] == pytest.approx(per_label[j]), name
        assert row["precision"] == pytest.approx(precision_score(TARGETS[:, j], predicted[:, j], zero_division=0)), name
        assert row["recall"] == pytest.approx(recall_score(TARGETS[:, j], predicted[:, j], zero_division=0)), name
        assert row["support"] == int(TARGETS[:, j].sum()), name


def test_random_predictions_match_sklearn():
    rng = np.random.default_rng(0)
    for trial in range(50):
        n, labels = int(rng.integers(2, 40)), int(rng.integers(2, 6))
        y = (rng.random((n, labels)) < rng.random(labels)).astype(np.float32)
        s = np.round(rng.random((n, labels)), int(rng.integers(1, 3))).astype(np.float32)  # rounding: many ties
        present = y.sum(0) > 0
        if present.sum() >= 2:
            want = _sk(average_precision_score, y[:, present], s[:, present], average="macro")
            assert mean_average_precision(s, y) == pytest.approx(want, abs=1e-12), trial
        t = rng.random(labels).astype(np.float32)
        p = (s >= t).astype(int)
        got = f1_scores(s, y, t)
        assert got["micro_f1"] == pytest.approx(_sk(f1_score, y, p, average="micro", zero_division=0)), trial
        assert got["macro_f1"] == pytest.approx(_sk(f1_score, y, p, average="macro", zero_division=0)), trial


def _best_f1_by_brute_force(scores: np.ndarray, targets: np.ndarray, average: str) -> float:
    """The best F1 of ``scores ≥ t`` over every threshold that changes a prediction (and one above all scores)."""
    candidates = np.r_[np.unique(scores), 2.0]
    return max(_sk(f1_score, targets, (scores >= c).astype(int), average=average, zero_division=0) for c in candidates)


def test_per_label_thresholds_maximise_each_labels_f1():
    thresholds = tune_thresholds(SCORES, TARGETS, "per_label")
    assert thresholds.dtype == np.float32 and thresholds.shape == (4,)
    for j in range(3):
        best = _best_f1_by_brute_force(SCORES[:, j], TARGETS[:, j], "binary")
        got = _sk(f1_score, TARGETS[:, j], (SCORES[:, j] >= thresholds[j]).astype(int), zero_division=0)
        assert got == pytest.approx(best), f"label {j}: threshold {thresholds[j]} gives F1 {got}, best is {best}"
    assert thresholds[3] == 0.5, "a label without positives (F1 0 everywhere) keeps 0.5"


def test_global_threshold_maximises_micro_f1():
    thresholds = tune_thresholds(SCORES, TARGETS, "global")
    assert len(set(thresholds.tolist())) == 1, thresholds
    got = _sk(f1_score, TARGETS, np.greater_equal(SCORES, thresholds).astype(int), average="micro", zero_division=0)
    assert got == pytest.approx(_best_f1_by_brute_force(SCORES, TARGETS, "micro"))


def test_ties_go_to_the_threshold_closest_to_half():
    # every threshold in (0.2, 0.8] gives F1 1: 0.5 is kept; in (0.6, 0.9] the midpoint nearest 0.5 is 0.65
    scores = np.array([[0.2, 0.1], [0.8, 0.6], [0.9, 0.7], [0.1, 0.9]], dtype=np.float32)
    targets = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
    thresholds = tune_thresholds(scores, targets, "per_label")
    assert thresholds[0] == 0.5
    assert thresholds[1] == pytest.approx(0.65)
    # all samples positive: predicting every one positive is a candidate (a threshold below the lowest score)
    ones = tune_thresholds(np.array([[0.1], [0.3]], dtype=np.float32), np.ones((2, 1), dtype=np.float32))
    assert ones[0] <= 0.1, ones


def test_no_validation_samples_keep_the_default():
    thresholds = tune_thresholds(np.zeros((0, 3), dtype=np.float32), np.zeros((0, 3)), "per_label")
    assert thresholds.tolist() == [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="per_label"):
        tune_thresholds(SCORES, TARGETS, "best")  # type: ignore[arg-type]
