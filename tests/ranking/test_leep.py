"""LEEP against a literal loop implementation of Nguyen et al.'s expected empirical predictor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.ranking import references as R
from tests.ranking.inputs import informative_probabilities, labels, probabilities
from transferlab.errors import DataError
from transferlab.ranking import leep

RTOL = 1e-9

#: (seed, n, source classes Z, target classes C, label layout)
SHAPES = [
    (0, 50, 10, 2, "balanced"),
    (1, 80, 30, 7, "balanced"),
    (2, 40, 100, 5, "unbalanced"),
    (3, 60, 3, 12, "balanced"),
    (4, 30, 8, 4, "singleton"),
]


def _inputs(seed, n, source_classes, classes, layout):
    rng = np.random.default_rng(seed)
    y = labels(rng, n, classes, layout)
    theta = probabilities(rng, n, source_classes)
    return torch.tensor(theta, dtype=torch.float32), torch.tensor(y)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_the_reference_on_random_probabilities(shape):
    theta, y = _inputs(*shape)
    got, want = leep(theta, y), R.leep(theta, y)
    assert isinstance(got, float), f"leep returns {type(got)}, not a Python float"
    assert math.isclose(got, want, rel_tol=RTOL), f"{shape}: leep={got!r}, reference={want!r}"


@pytest.mark.parametrize(("seed", "source_classes", "classes"), [(10, 6, 3), (11, 20, 5)])
def test_matches_the_reference_on_informative_probabilities(seed, source_classes, classes):
    rng = np.random.default_rng(seed)
    y = labels(rng, 60, classes)
    theta = torch.tensor(informative_probabilities(rng, y, source_classes, sharp=3.0))
    got, want = leep(theta, torch.tensor(y)), R.leep(theta, y)
    assert math.isclose(got, want, rel_tol=RTOL), f"informative seed={seed}: leep={got!r}, reference={want!r}"


def test_unused_source_classes_are_ignored():
    rng = np.random.default_rng(12)
    y = labels(rng, 40, 4)
    theta = np.zeros((40, 9))
    theta[:, :5] = probabilities(rng, 40, 5)  # source classes 5..8 get no probability at all
    got, want = leep(torch.tensor(theta), torch.tensor(y)), R.leep(theta, y)
    assert math.isfinite(got), f"zero-mass source classes made leep {got!r}"
    assert math.isclose(got, want, rel_tol=RTOL), f"leep={got!r}, reference={want!r}"


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_is_at_most_zero(shape):
    theta, y = _inputs(*shape)
    got = leep(theta, y)
    assert got <= 0.0, f"{shape}: leep={got!r} > 0, but it is an average log-likelihood"


def test_a_source_label_that_determines_the_target_scores_zero():
    rng = np.random.default_rng(13)
    y = labels(rng, 45, 3)
    z = y + 3 * rng.integers(0, 2, size=len(y))  # target t owns source classes t and t + 3
    theta = np.eye(6)[z]
    got = leep(torch.tensor(theta), torch.tensor(y))
    assert math.isclose(got, 0.0, abs_tol=1e-12), f"deterministic one-hot source: leep={got!r}, expected 0"


@pytest.mark.parametrize(("seed", "source_classes", "classes"), [(14, 10, 4), (15, 30, 10)])
def test_informative_probabilities_score_higher_than_uninformative_ones(seed, source_classes, classes):
    rng = np.random.default_rng(seed)
    y = labels(rng, 100, classes)
    good = leep(torch.tensor(informative_probabilities(rng, y, source_classes)), torch.tensor(y))
    bad = leep(torch.tensor(probabilities(rng, 100, source_classes)), torch.tensor(y))
    assert good > bad, f"informative source scored {good!r}, uninformative {bad!r}: expected higher"


@pytest.mark.parametrize("shape", SHAPES[:3], ids=str)
def test_invariant_to_permuting_label_ids_source_classes_and_relabelling(shape):
    theta, y = _inputs(*shape)
    base = leep(theta, y)
    rng = np.random.default_rng(shape[0])
    classes, columns = torch.tensor(rng.permutation(shape[3])), torch.tensor(rng.permutation(shape[2]))
    variants = {
        "permuted label ids": leep(theta, classes[y]),
        "label ids 5..": leep(theta, y + 5),
        "permuted source classes": leep(theta[:, columns], y),
    }
    for what, value in variants.items():
        assert math.isclose(value, base, rel_tol=1e-12), f"{shape} {what}: leep={value!r} vs {base!r}"


def test_a_single_class_is_a_data_error():
    theta, _ = _inputs(*SHAPES[0])
    with pytest.raises(DataError, match=r"^leep:.*single class"):
        leep(theta, torch.zeros(len(theta), dtype=torch.long))


def test_nan_probabilities_are_a_data_error():
    theta, y = _inputs(*SHAPES[0])
    theta[0, 0] = float("nan")
    with pytest.raises(DataError, match=r"^leep:.*NaN"):
        leep(theta, y)


def test_mismatched_lengths_are_a_data_error():
    theta, y = _inputs(*SHAPES[0])
    with pytest.raises(DataError, match=r"^leep:.*must pair up"):
        leep(theta, y[:-2])


def test_multi_hot_labels_are_a_data_error():
    theta, y = _inputs(*SHAPES[0])
    with pytest.raises(DataError, match=r"^leep:.*multi-label"):
        leep(theta, torch.nn.functional.one_hot(y).double())


def test_logits_instead_of_probabilities_are_a_data_error():
    rng = np.random.default_rng(16)
    logits = torch.tensor(rng.standard_normal((30, 5)) * 3)
    y = torch.tensor(labels(rng, 30, 3))
    with pytest.raises(DataError, match=r"^leep:.*softmax"):
        leep(logits, y)
    with pytest.raises(DataError, match=r"^leep:.*softmax"):
        leep(logits.abs() / logits.abs().sum(1, keepdim=True) * 2, y)  # non-negative, rows sum to 2
