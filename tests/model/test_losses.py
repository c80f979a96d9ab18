"""The task group's losses: class weights, label smoothing and focal loss change the loss exactly as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from transferlab.errors import ConfigError
from transferlab.model.tasks.losses import (
    balanced_weights,
    label_counts,
    multi_label_loss,
    positive_weights,
    resolve_weights,
    single_label_loss,
)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 5, generator=g), torch.randint(0, 5, (16,), generator=g)


def test_auto_class_weights_are_scikit_learns_balanced_weights_and_keep_the_mean_sample_weight_at_one():
    y = np.array([0] * 50 + [1] * 5 + [2] * 20 + [3] * 1)
    counts = label_counts(y, 4)
    w = balanced_weights(counts)
    np.testing.assert_allclose(w, compute_class_weight("balanced", classes=np.arange(4), y=y))
    assert (counts * w).sum() == pytest.approx(len(y))
    assert balanced_weights([3.0, 0.0, 1.0])[1] == 0.0  # a class absent from train weighs nothing


def test_class_weights_give_pytorchs_weighted_mean_and_change_the_loss_as_specified(batch):
    logits, y = batch
    w = torch.tensor([1.0, 2.0, 0.5, 4.0, 1.0])
    by_hand = -(w[y] * F.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)).sum() / w[y].sum()
    assert torch.allclose(single_label_loss(logits, y, weight=w), by_hand)
    assert torch.allclose(single_label_loss(logits, y, weight=w), F.cross_entropy(logits, y, weight=w))
    assert not torch.allclose(single_label_loss(logits, y, weight=w), single_label_loss(logits, y))
    # uniform weights are no weights at all
    assert torch.allclose(single_label_loss(logits, y, weight=torch.full((5,), 3.0)), F.cross_entropy(logits, y))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_focal_loss_with_gamma_zero_is_cross_entropy_and_gamma_two_matches_the_formula(batch, smoothing, weighted):
    logits, y = batch
    w = torch.tensor([1.0, 2.0, 0.5, 4.0, 1.0]) if weighted else None
    plain = F.cross_entropy(logits, y, weight=w, label_smoothing=smoothing)
    assert torch.allclose(single_label_loss(logits, y, weight=w, smoothing=smoothing, gamma=0.0), plain)
    logp = F.log_softmax(logits, 1)
    ww = torch.ones(5) if w is None else w
    p_y = logp.gather(1, y[:, None]).squeeze(1).exp()
    per = -(1 - smoothing) * ww[y] * logp.gather(1, y[:, None]).squeeze(1) - smoothing * (logp * ww).mean(1)
    expected = ((1 - p_y) ** 2 * per).sum() / ww[y].sum()
    got = single_label_loss(logits, y, weight=w, smoothing=smoothing, gamma=2.0)
    assert torch.allclose(got, expected)
    assert got < plain  # focusing down-weights every sample (1 - p < 1)


def test_multi_label_loss_is_bce_with_pos_weight_weights_and_smoothing():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(8, 4, generator=g)
    t = (torch.rand(8, 4, generator=g) > 0.6).float()
    pw, w = torch.tensor([1.0, 3.0, 0.5, 2.0]), torch.tensor([1.0, 2.0, 1.0, 4.0])
    assert torch.allclose(multi_label_loss(z, t), F.binary_cross_entropy_with_logits(z, t))
    assert torch.allclose(
        multi_label_loss(z, t, pos_weight=pw, weight=w),
        F.binary_cross_entropy_with_logits(z, t, pos_weight=pw, weight=w / w.mean()),
    )
    assert torch.allclose(multi_label_loss(z, t, smoothing=0.2), F.binary_cross_entropy_with_logits(z, t * 0.8 + 0.1))
    p = torch.sigmoid(z)
    focal = -(t * (1 - p) ** 2 * torch.log(p) + (1 - t) * p**2 * torch.log(1 - p)).mean()
    assert torch.allclose(multi_label_loss(z, t, gamma=2.0), focal, atol=1e-6)
    assert torch.allclose(multi_label_loss(z, t, gamma=0.0), multi_label_loss(z, t))


def test_positive_weights_are_negatives_over_positives():
    np.testing.assert_allclose(positive_weights(np.array([1.0, 5.0, 0.0]), 10), [9.0, 1.0, 1.0])
    targets = np.array([[1, 0], [1, 1], [0, 0]])
    np.testing.assert_allclose(label_counts(targets, 2), [2.0, 1.0])


def test_resolve_weights_checks_a_list_against_the_classes_and_auto_without_data_is_ones():
    assert resolve_weights(None, "class_weights", 3, ["a", "b", "c"], None) is None
    assert torch.equal(resolve_weights("auto", "class_weights", 3, ["a", "b", "c"], None), torch.ones(3))
    assert torch.equal(
        resolve_weights("auto", "class_weights", 2, ["a", "b"], np.array([0.5, 2.0])), torch.tensor([0.5, 2.0])
    )
    with pytest.raises(ConfigError, match=r"task.class_weights=\[1.0, 2.0\]: 2 weights for 3 classes \(a, b, c\)"):
        resolve_weights((1.0, 2.0), "class_weights", 3, ["a", "b", "c"], None)
