"""NCE against a literal count-based implementation of Tran et al.'s negative conditional entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.ranking import references as R
from tests.ranking.inputs import informative_probabilities, labels, probabilities
from transferlab.errors import DataError
from transferlab.ranking import nce

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
    got, want = nce(theta, y), R.nce(theta, y)
    assert isinstance(got, float), f"nce returns {type(got)}, not a Python float"
    assert math.isclose(got, want, rel_tol=RTOL), f"{shape}: nce={got!r}, reference={want!r}"


@pytest.mark.parametrize(("seed", "source_classes", "classes"), [(10, 6, 3), (11, 20, 5)])
def test_matches_the_reference_on_noisy_informative_probabilities(seed, source_classes, classes):
    rng = np.random.default_rng(seed)
    y = labels(rng, 60, classes)
    theta = torch.tensor(informative_probabilities(rng, y, source_classes, sharp=1.5))
    got, want = nce(theta, torch.tensor(y)), R.nce(theta, y)
    assert math.isclose(got, want, rel_tol=RTOL), f"noisy informative seed={seed}: nce={got!r}, reference={want!r}"


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lies_between_minus_the_label_entropy_and_zero(shape):
    theta, y = _inputs(*shape)
    got, h = nce(theta, y), R.entropy(y)
    assert -h - 1e-12 <= got <= 0.0, f"{shape}: nce={got!r} outside [-H(Y), 0] = [{-h!r}, 0]"


def test_a_source_label_that_determines_the_target_scores_zero():
    rng = np.random.default_rng(12)
    y = labels(rng, 60, 4)
    theta = informative_probabilities(rng, y, 12, sharp=20.0)  # argmax is a source class target y owns
    got = nce(torch.tensor(theta), torch.tensor(y))
    assert math.isclose(got, 0.0, abs_tol=1e-12), (
        f"source label determines the target label but nce={got!r}, expected 0"
    )


def test_a_constant_source_label_scores_minus_the_label_entropy():
    rng = np.random.default_rng(13)
    y = labels(rng, 50, 5, "unbalanced")
    theta = torch.full((50, 7), 1 / 7, dtype=torch.float64)  # every row ties: argmax is source class 0
    got, want = nce(theta, torch.tensor(y)), -R.entropy(y)
    assert math.isclose(got, want, rel_tol=1e-12), f"uninformative source: nce={got!r}, -H(Y)={want!r}"


@pytest.mark.parametrize(("seed", "source_classes", "classes"), [(14, 10, 4), (15, 30, 10)])
def test_informative_probabilities_score_higher_than_uninformative_ones(seed, source_classes, classes):
    rng = np.random.default_rng(seed)
    y = labels(rng, 100, classes)
    good = nce(torch.tensor(informative_probabilities(rng, y, source_classes, sharp=2.0)), torch.tensor(y))
    bad = nce(torch.tensor(probabilities(rng, 100, source_classes)), torch.tensor(y))
    assert good > bad, f"informative source scored {good!r}, uninformative {bad!r}: expected higher"


@pytest.mark.parametrize("shape", SHAPES[:3], ids=str)
def test_invariant_to_permuting_label_ids_source_classes_and_relabelling(shape):
    theta, y = _inputs(*shape)
    base = nce(theta, y)
    rng = np.random.default_rng(shape[0])
    classes, columns = torch.tensor(rng.permutation(shape[3])), torch.tensor(rng.permutation(shape[2]))
    variants = {
        "permuted label ids": nce(theta, classes[y]),
        "label ids 5..": nce(theta, y + 5),
        "permuted source classes": nce(theta[:, columns], y),
    }
    for what, value in variants.items():
        assert math.isclose(value, base, rel_tol=1e-12), f"{shape} {what}: nce={value!r} vs {base!r}"


def test_a_single_class_is_a_data_error():
    theta, _ = _inputs(*SHAPES[0])
    with pytest.raises(DataError, match=r"^nce:.*single class"):
        nce(theta, torch.ones(len(theta), dtype=torch.long))


def test_nan_probabilities_are_a_data_error():
    theta, y = _inputs(*SHAPES[0])
    theta[5, 1] = float("nan")
    with pytest.raises(DataError, match=r"^nce:.*NaN"):
        nce(theta, y)


def test_mismatched_lengths_are_a_data_error():
    theta, y = _inputs(*SHAPES[0])
    with pytest.raises(DataError, match=r"^nce:.*must pair up"):
        nce(theta[:-1], y)


def test_multi_hot_labels_are_a_data_error():
    theta, y = _inputs(*SHAPES[0])
    with pytest.raises(DataError, match=r"^nce:.*multi-label"):
        nce(theta, torch.nn.functional.one_hot(y).double())


def test_logits_instead_of_probabilities_are_a_data_error():
    rng = np.random.default_rng(16)
    logits = torch.tensor(rng.standard_normal((30, 5)) * 3)
    with pytest.raises(DataError, match=r"^nce:.*softmax"):
        nce(logits, torch.tensor(labels(rng, 30, 3)))
