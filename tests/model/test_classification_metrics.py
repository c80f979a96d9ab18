"""Single-label metrics: accuracy, balanced accuracy and macro-F1 equal scikit-learn's on fixed predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from transferlab.model.tasks.classification import ClassificationTask, confusion_scores


def _confusion(y: np.ndarray, p: np.ndarray, classes: int) -> torch.Tensor:
    c = torch.zeros(classes, classes, dtype=torch.long)
    for t, q in zip(y, p, strict=True):
        c[t, q] += 1
    return c


@pytest.mark.parametrize("seed", range(5))
def test_confusion_scores_equal_scikit_learn_with_rare_and_absent_classes(seed):
    rng = np.random.default_rng(seed)
    classes = 6
    # class 5 never occurs in the split, class 4 is rare; predictions may still name class 5
    y = rng.choice(5, size=200, p=[0.5, 0.3, 0.12, 0.06, 0.02])
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, classes, 200))
    scores = confusion_scores(_confusion(y, p, classes))
    present = np.unique(y)
    assert float(scores["acc"]) == pytest.approx(accuracy_score(y, p))
    with pytest.warns(UserWarning):  # scikit-learn warns that predicted class 5 is not in y_true
        expected_balanced = balanced_accuracy_score(y, p)
    assert float(scores["balanced_acc"]) == pytest.approx(expected_balanced)
    expected_f1 = f1_score(y, p, average="macro", labels=present, zero_division=0)
    assert float(scores["macro_f1"]) == pytest.approx(expected_f1)


def test_an_empty_split_scores_nan():
    scores = confusion_scores(torch.zeros(3, 3, dtype=torch.long))
    assert all(torch.isnan(v) for v in scores.values())


def test_the_task_records_the_imbalance_metrics_and_trains_with_class_weights():
    task = ClassificationTask(4, 3, weight=torch.tensor([1.0, 1.0, 5.0]))
    x, y = torch.randn(12, 4), torch.tensor([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2])
    out = task.training_step((x, y), lambda b: b)
    expected = torch.nn.functional.cross_entropy(task(x), y, weight=torch.tensor([1.0, 1.0, 5.0]))
    assert torch.allclose(out.loss, expected)
    task.eval_step("val", (x, y), lambda b: b)
    values = task.epoch_end("val", lambda t: t)
    assert set(values.recorded) == {"val/loss", "val/acc", "val/balanced_acc", "val/macro_f1"}
    # the validation loss is the plain one (comparable across loss settings)
    assert values.recorded["val/loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(task(x), y)))
    assert {"val/balanced_acc", "test/macro_f1"} <= set(task.metric_names())
