"""LogME against a literal per-column implementation of You et al.'s fixed-point iteration and evidence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.ranking import references as R
from tests.ranking.inputs import CASES, case_inputs, clusters
from transferlab.errors import DataError
from transferlab.ranking import logme

RTOL = 1e-6


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_the_reference_on_random_features(case):
    f, y = case_inputs(case)
    got, want = logme(f, y), R.logme(f, y)
    assert isinstance(got, float), f"logme returns {type(got)}, not a Python float"
    assert math.isclose(got, want, rel_tol=RTOL), f"{case.id}: logme={got!r}, reference={want!r}"


@pytest.mark.parametrize(("seed", "n", "d", "classes"), [(10, 60, 8, 3), (11, 20, 40, 4), (12, 150, 32, 10)])
def test_matches_the_reference_on_gaussian_clusters(seed, n, d, classes):
    f, y = clusters(seed, n, d, classes)
    got, want = logme(f, y), R.logme(f, y)
    assert math.isclose(got, want, rel_tol=RTOL), f"clusters seed={seed}: logme={got!r}, reference={want!r}"


def test_float32_and_float64_features_give_the_reference_of_the_same_values():
    f, y = case_inputs(CASES[2])
    got32, got64 = logme(f, y), logme(f.double(), y)
    want = R.logme(f.double().numpy(), y.numpy())
    assert math.isclose(got32, want, rel_tol=RTOL), f"float32 input: logme={got32!r}, reference={want!r}"
    assert math.isclose(got64, got32, rel_tol=1e-12), f"float64 cast changed the score: {got64!r} vs {got32!r}"


@pytest.mark.parametrize(("seed", "n", "d", "columns"), [(20, 50, 10, 3), (21, 25, 40, 5), (22, 80, 16, 1)])
def test_multi_label_targets_are_the_mean_of_per_column_references(seed, n, d, columns):
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, columns)) < 0.4).astype(np.float64)
    targets[0] = 1.0  # every label present at least once
    f = torch.tensor(rng.standard_normal((n, d)) + 1.0, dtype=torch.float32)
    got = logme(f, torch.tensor(targets))
    per_column = [R.logme_column(R.as_numpy(f), targets[:, k]) for k in range(columns)]
    want = float(np.mean(per_column))
    assert math.isclose(got, want, rel_tol=RTOL), f"multi-hot seed={seed}: logme={got!r}, mean of columns={want!r}"


def test_class_indices_equal_their_one_hot_matrix():
    f, y = case_inputs(CASES[3])
    one_hot = torch.nn.functional.one_hot(y).double()
    got_index, got_matrix = logme(f, y), logme(f, one_hot)
    assert math.isclose(got_index, got_matrix, rel_tol=1e-12), f"indices {got_index!r} vs one-hot {got_matrix!r}"


@pytest.mark.parametrize(("n", "d", "classes"), [(60, 8, 3), (30, 50, 4)])
def test_separable_features_score_higher_than_random_ones(n, d, classes):
    separated, y = clusters(30, n, d, classes, separation=12.0)
    random = torch.tensor(np.random.default_rng(31).standard_normal((n, d)))
    good, bad = logme(separated, y), logme(random, y)
    assert good > bad, f"separable clusters scored {good!r}, random features {bad!r}: expected higher"


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: c.id)
def test_invariant_to_permuting_and_relabelling_class_ids(case):
    f, y = case_inputs(case)
    base = logme(f, y)
    permutation = torch.tensor(np.random.default_rng(case.seed).permutation(case.classes))
    permuted, shifted = logme(f, permutation[y]), logme(f, y + 5)
    assert math.isclose(permuted, base, rel_tol=1e-12), f"permuted ids: {permuted!r} vs {base!r}"
    assert math.isclose(shifted, base, rel_tol=1e-12), f"ids 5..: {shifted!r} vs {base!r}"


def test_features_are_not_centred():
    f, y = case_inputs(CASES[0])
    shifted = f.double() + 10.0
    got, want = logme(shifted, y), R.logme(shifted, y)
    assert math.isclose(got, want, rel_tol=RTOL), f"shifted features: logme={got!r}, reference={want!r}"
    assert not math.isclose(got, logme(f, y), rel_tol=1e-6), "a constant shift left LogME unchanged: centred?"


def test_a_single_class_is_a_data_error():
    f, _ = case_inputs(CASES[0])
    with pytest.raises(DataError, match=r"^logme:.*single class"):
        logme(f, torch.full((len(f),), 3))


def test_nan_features_are_a_data_error():
    f, y = case_inputs(CASES[0])
    f[3, 2] = float("nan")
    with pytest.raises(DataError, match=r"^logme:.*NaN"):
        logme(f, y)


def test_mismatched_lengths_are_a_data_error():
    f, y = case_inputs(CASES[0])
    with pytest.raises(DataError, match=r"^logme:.*must pair up"):
        logme(f[:-1], y)
