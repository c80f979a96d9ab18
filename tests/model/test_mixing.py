"""Mixup and CutMix (``model/mixing.py``): targets sum to 1, the right pairs are mixed, the loss takes them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from transferlab.model.mixing import BatchMixer
from transferlab.model.tasks.classification import ClassificationTask
from transferlab.model.tasks.losses import single_label_loss
from transferlab.model.tasks.multilabel import MultiLabelTask
from transferlab.strategies.spec import StageSpec


def _batch(n: int = 6, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.rand(n, 3, 8, 8), torch.arange(n) % classes


def test_mixup_blends_sample_i_with_sample_n_minus_1_minus_i_and_their_labels_alike():
    np.random.seed(0)  # λ ≈ 0.61 (Beta(0.4, 0.4) often draws λ within 1e-9 of 0 or 1)
    x, y = _batch()
    task = ClassificationTask(5, 4)
    mixed, targets = BatchMixer(StageSpec("s", mixup=0.4))(x, task.soft_targets(y))
    assert torch.allclose(targets.sum(1), torch.ones(6))
    lam = float(targets[0, y[0]])  # sample 0 (class 0) is paired with sample 5 (class 1)
    assert 0.0 < lam < 1.0 and targets[0, y[5]] == pytest.approx(1 - lam)
    for i in range(6):
        j = 5 - i
        assert torch.allclose(mixed[i], lam * x[i] + (1 - lam) * x[j], atol=1e-6), i
        expected = lam * F.one_hot(y[i], 4).float() + (1 - lam) * F.one_hot(y[j], 4).float()
        assert torch.allclose(targets[i], expected, atol=1e-6), i
    assert not torch.equal(mixed, x) and torch.equal(x, _batch()[0]), "the input batch is left as it is"


def test_cutmix_pastes_a_box_of_the_partner_and_weighs_labels_by_its_area():
    np.random.seed(3)
    x, y = _batch()
    mixed, targets = BatchMixer(StageSpec("s", cutmix=1.0))(x, ClassificationTask(5, 4).soft_targets(y))
    from_partner = (mixed[0] == x[5]).all(dim=0) & (mixed[0] != x[0]).any(dim=0)
    kept = (mixed[0] == x[0]).all(dim=0)
    assert bool((from_partner | kept).all()), "every pixel comes from sample 0 or its partner 5"
    area = float(from_partner.float().mean())
    assert 0.0 < area < 1.0
    assert targets[0, y[0]] == pytest.approx(1 - area, abs=1e-6) and targets[0, y[5]] == pytest.approx(area, abs=1e-6)
    assert torch.allclose(targets.sum(1), torch.ones(6))


def test_an_odd_batch_mixes_all_but_its_last_sample_and_multi_hot_labels_mix_the_same_way():
    np.random.seed(2)
    x, _ = _batch(5)
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float32)
    mixed, targets = BatchMixer(StageSpec("s", mixup=1.0))(x, MultiLabelTask(5, 3).soft_targets(labels))
    assert torch.equal(mixed[4], x[4]) and torch.equal(targets[4], labels[4])
    lam = 1.0 - float(targets[1, 0])  # sample 1 lacks label 0; its partner (sample 2 of the first 4) has it
    assert torch.allclose(targets[1], lam * labels[1] + (1 - lam) * labels[2], atol=1e-6)
    assert torch.allclose(targets[:4], lam * labels[:4] + (1 - lam) * labels[:4].flip(0), atol=1e-6)


def test_mix_prob_zero_never_mixes_and_a_batch_of_one_passes_through():
    x, y = _batch()
    soft = ClassificationTask(5, 4).soft_targets(y)
    mixed, targets = BatchMixer(StageSpec("s", mixup=0.4, mix_prob=0.0))(x, soft)
    assert torch.equal(mixed, x) and torch.equal(targets, soft)
    one, t = BatchMixer(StageSpec("s", mixup=0.4))(x[:1], soft[:1])
    assert torch.equal(one, x[:1]) and torch.equal(t, soft[:1])


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_the_loss_of_mixed_targets_is_cross_entropy_with_probabilities(smoothing):
    torch.manual_seed(0)
    logits, probs = torch.randn(6, 4), torch.softmax(torch.randn(6, 4), 1)
    got = single_label_loss(logits, probs, smoothing=smoothing)
    smoothed = probs * (1 - smoothing) + smoothing / 4
    expected = -(smoothed * F.log_softmax(logits, 1)).sum(1).mean()
    assert torch.allclose(got, expected, atol=1e-6)
    with pytest.raises(ValueError, match="focal"):
        single_label_loss(logits, probs, gamma=2.0)


def test_a_stage_label_smoothing_replaces_the_task_groups_in_training_only():
    torch.manual_seed(0)
    task = ClassificationTask(5, 4)
    features, y = torch.randn(6, 5), torch.arange(6) % 4
    task.stage_smoothing = 0.2
    out = task.training_step((features, y), lambda f: f)
    expected = F.cross_entropy(task(features), y, label_smoothing=0.2)
    assert torch.allclose(out.loss, expected)
    task.stage_smoothing = None
    out = task.training_step((features, y), lambda f: f)
    assert torch.allclose(out.loss, F.cross_entropy(task(features), y))
