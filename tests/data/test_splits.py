"""Seeded stratified splits and per-class subsampling."""

from __future__ import annotations

import numpy as np
import pytest

from transferlab.data.splits import stratified_split, subsample_per_class
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
