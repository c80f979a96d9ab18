"""Seeded stratified splits and per-class subsampling."""

from __future__ import annotations

import numpy as np
import pytest

from transferlab.data.splits import rarest_label_strata, stratified_split, subsample_per_class
from transferlab.errors import ConfigError

LABELS = np.repeat(np.arange(4), [20, 10, 5, 2])


def test_split_partitions_and_stratifies():
    s = stratified_split(LABELS, 0.2, 0.2, seed=0)
    joined = np.concatenate([s.train, s.val, s.test])
    assert sorted(joined.tolist()) == list(range(len(LABELS))), "splits must partition the pool"
    assert np.bincount(LABELS[s.test]).tolist() == [4, 2, 1, 1], f"test counts {np.bincount(LABELS[s.test])}"
    assert np.bincount(LABELS[s.train], minlength=4).min() >= 1, "every class keeps a training sample"


def test_test_split_ignores_val_fraction_and_seed_changes_it():
    a = stratified_split(LABELS, 0.1, 0.2, seed=0)
    b = stratified_split(LABELS, 0.3, 0.2, seed=0)
    c = stratified_split(LABELS, 0.1, 0.2, seed=1)
    assert np.array_equal(a.test, b.test), "the test split must not depend on val_fraction"
    assert not np.array_equal(a.test, c.test), "another seed should give another test split"


def test_shots_are_exact_and_nested():
    train = stratified_split(LABELS, 0.0, 0.2, seed=0).train  # class 3 keeps 1 training sample of its 2
    big = train[LABELS[train] < 3]
    three = subsample_per_class(LABELS, big, 0, shots_per_class=3)
    one = subsample_per_class(LABELS, big, 0, shots_per_class=1)
    assert np.bincount(LABELS[one]).tolist() == [1, 1, 1], f"1 shot per class, got {np.bincount(LABELS[one])}"
    assert set(one.tolist()) <= set(three.tolist()), "1-shot set should be inside the 3-shot set"
    with pytest.raises(ConfigError) as err:
        subsample_per_class(LABELS, train, 0, shots_per_class=3, class_names=["a", "b", "c", "d"])
    assert "class 'd'" in str(err.value) and "only 1" in str(err.value), f"unclear: {err.value}"


def test_label_fraction_keeps_at_least_one():
    kept = subsample_per_class(LABELS, np.arange(len(LABELS)), 0, label_fraction=0.1)
    assert np.bincount(LABELS[kept]).tolist() == [2, 1, 1, 1], f"got {np.bincount(LABELS[kept])}"


def test_rarest_label_strata():
    targets = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 0]], dtype=np.float32)
    strata = rarest_label_strata(targets)  # label counts 4, 3, 1: rarest is 2, then 1, then 0
    assert strata.tolist() == [1, 0, 3, 2, 1, 0], f"each sample's rarest positive label, 3 = none: {strata}"
    assert strata.dtype == np.int64
    tie = rarest_label_strata(np.array([[1, 1], [1, 1]]))
    assert tie.tolist() == [0, 0], "a tie goes to the lower label index"
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        rarest_label_strata(np.zeros(3))


def test_rarest_label_stratification_puts_a_rare_label_in_every_split():
    rng = np.random.default_rng(0)
    targets = (rng.random((200, 4)) < [0.9, 0.5, 0.3, 0.0]).astype(np.float32)
    targets[:5, 3] = 1  # a rare label: 5 of 200 images
    split = stratified_split(rarest_label_strata(targets), 0.2, 0.2, seed=0)
    for name in ("train", "val", "test"):
        assert targets[getattr(split, name), 3].sum() >= 1, f"the rare label is missing from {name}"
    assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(range(200))
