"""The interpretation math: per-class scores, most-confused pairs, label errors and top losses, by hand and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import precision_recall_fscore_support

from transferlab.model.interpretation import (
    SampleOutputs,
    confusion_matrix,
    interpret,
    label_errors,
    most_confused,
    per_class_scores,
    per_label_scores,
    top_loss_indices,
    top_losses,
    worst_classes,
)

NAMES = ["cat", "dog", "fox", "owl"]
# 8 samples of 4 classes; "owl" never occurs, "fox" is never predicted correctly
TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 1])
PRED = np.array([0, 1, 1, 1, 0, 1, 3, 1])


def test_confusion_matrix_equals_sklearns():
    got = confusion_matrix(TRUE, PRED, 4)
    assert got.tolist() == sk_confusion(TRUE, PRED, labels=range(4)).tolist()
    assert got.dtype == np.int64 and got.sum() == len(TRUE)


def test_per_class_scores_by_hand_with_none_where_undefined():
    rows = {r["name"]: r for r in per_class_scores(confusion_matrix(TRUE, PRED, 4), NAMES)}
    # cat: tp 1, fp 1 (a dog), fn 2 -> P 1/2, R 1/3, F1 2/(2+1+2)
    assert rows["cat"] == {
        "name": "cat",
        "support": 3,
        "predicted": 2,
        "correct": 1,
        "precision": 0.5,
        "recall": pytest.approx(1 / 3),
        "f1": pytest.approx(2 / 5),
    }
    # dog: tp 2, fp 3 (two cats, a fox), fn 1 -> P 2/5, R 2/3, F1 4/8
    assert (rows["dog"]["precision"], rows["dog"]["recall"], rows["dog"]["f1"]) == pytest.approx((0.4, 2 / 3, 0.5))
    # fox: present but never predicted -> no precision (0/0), recall 0, F1 0
    assert rows["fox"]["precision"] is None and rows["fox"]["recall"] == 0.0 and rows["fox"]["f1"] == 0.0
    # owl: no sample in the split -> support 0 and no scores, its one wrong prediction still counted
    assert rows["owl"]["support"] == 0 and rows["owl"]["predicted"] == 1
    assert rows["owl"]["precision"] is None and rows["owl"]["recall"] is None and rows["owl"]["f1"] is None


def test_per_class_scores_equal_sklearn_on_the_present_classes():
    rows = per_class_scores(confusion_matrix(TRUE, PRED, 4), NAMES)
    precision, recall, f1, support = precision_recall_fscore_support(TRUE, PRED, labels=range(4), zero_division=np.nan)
    for j, row in enumerate(rows):
        assert row["support"] == support[j], row
        if support[j] == 0:
            continue
        assert row["recall"] == pytest.approx(recall[j]) and row["f1"] == pytest.approx(f1[j]), row
        if np.isnan(precision[j]):
            assert row["precision"] is None, row
        else:
            assert row["precision"] == pytest.approx(precision[j]), row


def test_mean_f1_over_present_classes_is_the_tasks_macro_f1():
    import torch

    from transferlab.model.tasks.classification import confusion_scores

    matrix = confusion_matrix(TRUE, PRED, 4)
    f1 = [r["f1"] for r in per_class_scores(matrix, NAMES) if r["f1"] is not None]
    assert np.mean(f1) == pytest.approx(float(confusion_scores(torch.from_numpy(matrix))["macro_f1"]), abs=1e-6)


def test_an_empty_split_gives_rows_of_zero_support_not_a_crash():
    rows = per_class_scores(np.zeros((2, 2), dtype=np.int64), ["a", "b"])
    assert [r["support"] for r in rows] == [0, 0] and all(r["f1"] is None for r in rows)
    assert most_confused(np.zeros((2, 2)), ["a", "b"]) == [] and worst_classes(rows) == []


def test_most_confused_is_off_diagonal_sorted_by_count_with_min_val_and_top():
    matrix = np.array([[9, 3, 0], [1, 8, 3], [5, 0, 7]])
    names = ["a", "b", "c"]
    got = most_confused(matrix, names, top=None)
    assert got == [
        {"true": "c", "predicted": "a", "count": 5},
        {"true": "a", "predicted": "b", "count": 3},  # ties keep the matrix order
        {"true": "b", "predicted": "c", "count": 3},
        {"true": "b", "predicted": "a", "count": 1},
    ]
    assert most_confused(matrix, names, min_val=3, top=None) == got[:3]
    assert most_confused(matrix, names, top=2) == got[:2]
    assert all(r["true"] != r["predicted"] for r in most_confused(np.eye(3) * 50, names)), "never the diagonal"


def test_per_label_scores_at_the_thresholds_equal_sklearn():
    rng = np.random.default_rng(0)
    targets = (rng.random((40, 3)) < 0.4).astype(np.float32)
    targets[:, 2] = 0  # a label without positives
    scores = rng.random((40, 3)).astype(np.float32)
    thresholds = np.array([0.3, 0.5, 0.7], dtype=np.float32)
    predicted = scores >= thresholds
    rows = per_label_scores(targets, predicted, thresholds, ["x", "y", "z"])
    precision, recall, f1, support = precision_recall_fscore_support(
        targets.astype(int), predicted.astype(int), zero_division=np.nan
    )
    for j in range(2):
        assert rows[j]["support"] == support[j] and rows[j]["threshold"] == pytest.approx(thresholds[j])
        assert (rows[j]["precision"], rows[j]["recall"], rows[j]["f1"]) == pytest.approx(
            (precision[j], recall[j], f1[j])
        )
    assert rows[2]["support"] == 0 and rows[2]["f1"] is None and rows[2]["predicted"] == int(predicted[:, 2].sum())


def test_label_errors_count_false_positives_and_negatives_per_label():
    targets = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=np.float32)
    predicted = np.array([[0, 1], [0, 1], [0, 1], [0, 1]], dtype=bool)
    got = label_errors(targets, predicted, ["a", "b"])
    assert got == [
        {"label": "b", "error": "false positive", "count": 3},
        {"label": "a", "error": "false negative", "count": 2},
    ]
    assert label_errors(targets, predicted, ["a", "b"], top=1) == got[:1]


def _single() -> SampleOutputs:
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [4.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    targets = np.array([0, 2, 2, 1, 1])
    losses = -np.log(p[np.arange(5), targets])
    return SampleOutputs([f"s{i}" for i in range(5)], ["a", "b", "c"], p, losses, targets, logits.argmax(1))


def test_top_losses_are_the_highest_losses_first_with_both_probabilities():
    out = _single()
    rows = top_losses(out, k=2)
    assert [r["id"] for r in rows] == ["s3", "s1"], rows  # true b predicted a with 4 logits; true c predicted b
    first = rows[0]
    assert (first["true"], first["predicted"]) == ("b", "a")
    assert first["p_predicted"] == pytest.approx(out.probabilities[3, 0])
    assert first["p_true"] == pytest.approx(out.probabilities[3, 1])
    assert first["loss"] == pytest.approx(-np.log(out.probabilities[3, 1]))
    assert top_loss_indices(np.array([1.0, 2.0, 2.0, 0.5]), 3).tolist() == [1, 2, 0], "ties keep the sample order"
    assert len(top_losses(out, k=50)) == 5


def test_interpret_single_label_record():
    record = interpret(_single(), top_k=3)
    # predicted a, b, c, a, b for true a, c, c, b, b: s0, s2 and s4 right
    assert record["kind"] == "single_label" and record["samples"] == 5 and record["correct"] == 3
    assert record["accuracy"] == pytest.approx(3 / 5)
    assert record["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert record["most_confused"] == [
        {"true": "b", "predicted": "a", "count": 1},
        {"true": "c", "predicted": "b", "count": 1},
    ]
    assert len(record["top_losses"]) == 3 and record["worst_classes"][0] in {"b", "c"}


def test_interpret_multi_label_record_uses_the_thresholds():
    targets = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    p = np.array([[0.9, 0.2], [0.6, 0.7], [0.4, 0.1]], dtype=np.float32)
    thresholds = np.array([0.5, 0.3], dtype=np.float32)
    losses = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean(1)
    out = SampleOutputs(["u", "v", "w"], ["a", "b"], p, losses, targets, p >= thresholds, thresholds)
    record = interpret(out)
    assert record["kind"] == "multi_label" and record["correct"] == 1  # only u has every label right
    assert record["thresholds"] == pytest.approx({"a": 0.5, "b": 0.3})
    assert record["most_confused"] == [
        {"label": "a", "error": "false positive", "count": 1},
        {"label": "a", "error": "false negative", "count": 1},
        {"label": "b", "error": "false negative", "count": 1},
    ]
    worst = record["top_losses"][0]
    assert worst["id"] == "w" and worst["true"] == ["a", "b"] and worst["predicted"] == []
    assert worst["worst_label"] == "b" and worst["p_worst"] == pytest.approx(0.1)


def test_sample_outputs_refuse_misaligned_arrays():
    with pytest.raises(ValueError, match="losses of shape"):
        SampleOutputs(["a"], ["x", "y"], np.zeros((1, 2)), np.zeros(2), np.zeros(1), np.zeros(1))
