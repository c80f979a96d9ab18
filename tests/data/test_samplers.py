"""``data.sampler=balanced``: balanced batches, draws fixed by (seed, epoch), exact resume, through every loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlab.backbones.registry import create_backbone
from transferlab.data.factory import build_data
from transferlab.data.samplers import BalancedSampler, balanced_sample_weights
from transferlab.errors import ConfigError


def test_single_label_weights_are_inverse_frequency_and_every_class_gets_the_same_total():
    y = np.array([0] * 90 + [1] * 9 + [2] * 1)
    w = balanced_sample_weights(y)
    totals = [w[y == c].sum() for c in range(3)]
    np.testing.assert_allclose(totals, [1.0, 1.0, 1.0])


def test_multi_label_rows_weigh_as_their_rarest_label_and_unlabelled_rows_are_a_stratum():
    t = np.array([[1, 0, 0]] * 6 + [[1, 1, 0]] * 2 + [[0, 0, 1]] + [[0, 0, 0]] * 3)
    w = balanced_sample_weights(t)
    # label counts: 8, 2, 1: rows with label 1 (rarer than 0) weigh 1/2, the label-2 row 1, unlabelled rows 1/3
    np.testing.assert_allclose(w, [1 / 6] * 6 + [1 / 2] * 2 + [1.0] + [1 / 3] * 3)


def test_balanced_draws_give_balanced_batches_within_tolerance():
    y = np.array([0] * 900 + [1] * 90 + [2] * 10)
    sampler = BalancedSampler(balanced_sample_weights(y), seed=3)
    drawn = y[list(sampler)]
    shares = np.bincount(drawn, minlength=3) / len(drawn)
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.05)
    batches = drawn[: 64 * 15].reshape(15, 64)
    per_batch = np.stack([np.bincount(b, minlength=3) for b in batches]) / 64
    assert per_batch.min() > 0.1 and per_batch.max() < 0.6, per_batch  # every batch holds every class


def test_draws_depend_only_on_seed_and_epoch_so_a_resumed_run_sees_the_same_batches():
    w = balanced_sample_weights(np.array([0] * 50 + [1] * 5))
    uninterrupted = BalancedSampler(w, seed=1)
    orders = []
    for epoch in range(3):
        uninterrupted.set_epoch(epoch)
        orders.append(list(uninterrupted))
    resumed = BalancedSampler(w, seed=1)  # a fresh process, starting at epoch 2
    resumed.set_epoch(2)
    assert list(resumed) == orders[2]
    assert orders[0] != orders[1]
    other = BalancedSampler(w, seed=2)
    other.set_epoch(0)
    assert list(other) != orders[0]


@pytest.mark.parametrize("weights", [np.array([]), np.array([0.0, 0.0]), np.array([1.0, -1.0]), np.array([np.nan])])
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValueError, match="one finite, non-negative weight per sample"):
        BalancedSampler(weights, 0)


def _digits(**extra):
    backbone = create_backbone("small_cnn")
    data = build_data({"name": "digits", "image_size": 8, "batch_size": 32, **extra}, backbone.data_config)
    data.setup()
    return data


def test_an_imbalanced_digits_split_comes_out_balanced_from_the_real_loader():
    # 5 shots of class 0 against all of classes 1 and 2: a 1:23:23 training split
    data = _digits(classes=[0, 1, 2], sampler="balanced")
    targets = data.train_targets()
    keep = np.concatenate([np.flatnonzero(targets == 0)[:5], np.flatnonzero(targets != 0)])
    data.train_set.images, data.train_set.labels = data.train_set.images[keep], data.train_set.labels[keep]
    labels = torch.cat([y for _, y in data.train_dataloader()]).numpy()
    assert len(labels) == len(keep)
    shares = np.bincount(labels, minlength=3) / len(labels)
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.08)
    again = torch.cat([y for _, y in data.train_dataloader()]).numpy()
    np.testing.assert_array_equal(labels, again)  # the same epoch: the same draws


def test_shuffle_is_the_default_and_a_bad_sampler_names_the_key():
    assert _digits().sample_weights() is None
    with pytest.raises(ConfigError, match=r"data.sampler='weighted': choose one of shuffle, balanced"):
        _digits(sampler="weighted")
