"""H-score (Bao et al.) and shrinkage H-score (Ibrahim et al.) against numpy's cov/pinv and sklearn's LedoitWolf."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.ranking import references as R
from tests.ranking.inputs import CASES, case_inputs, clusters
from transferlab.errors import DataError
from transferlab.ranking import h_score, h_score_plain, ledoit_wolf

RTOL = 1e-6
ESTIMATORS = {"hscore": (h_score, R.h_score), "hscore_plain": (h_score_plain, R.h_score_plain)}


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_the_reference_on_random_features(case, name):
    estimator, reference = ESTIMATORS[name]
    f, y = case_inputs(case)
    got, want = estimator(f, y), reference(f, y)
    assert isinstance(got, float), f"{name} returns {type(got)}, not a Python float"
    assert math.isclose(got, want, rel_tol=RTOL), f"{case.id}: {name}={got!r}, reference={want!r}"


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize(("seed", "n", "d", "classes"), [(10, 60, 8, 3), (11, 20, 40, 4), (12, 150, 32, 10)])
def test_matches_the_reference_on_gaussian_clusters(seed, n, d, classes, name):
    estimator, reference = ESTIMATORS[name]
    f, y = clusters(seed, n, d, classes)
    got, want = estimator(f, y), reference(f, y)
    assert math.isclose(got, want, rel_tol=RTOL), f"clusters seed={seed}: {name}={got!r}, reference={want!r}"


@pytest.mark.parametrize("case", [*CASES[:4], CASES[6]], ids=lambda c: c.id)
def test_ledoit_wolf_matches_sklearn(case):
    f, _ = case_inputs(case)
    centred = f.double() - f.double().mean(0)
    covariance, alpha = ledoit_wolf(centred)
    want_covariance, want_alpha = R.ledoit_wolf(centred)
    assert 0.0 <= alpha <= 1.0, f"{case.id}: shrinkage {alpha!r} outside [0, 1]"
    assert math.isclose(alpha, want_alpha, rel_tol=1e-9), f"{case.id}: alpha={alpha!r}, sklearn={want_alpha!r}"
    assert np.allclose(covariance.numpy(), want_covariance, rtol=1e-9, atol=1e-12), (
        f"{case.id}: covariance differs from sklearn's by {np.abs(covariance.numpy() - want_covariance).max():.3g}"
    )


def test_ledoit_wolf_of_one_dimension_does_not_shrink():
    centred = torch.tensor(np.random.default_rng(3).standard_normal((25, 1)))
    centred -= centred.mean(0)
    covariance, alpha = ledoit_wolf(centred)
    want_covariance, want_alpha = R.ledoit_wolf(centred)
    assert alpha == want_alpha == 0.0, f"d=1: alpha={alpha!r}, sklearn={want_alpha!r}, expected 0"
    assert np.allclose(covariance.numpy(), want_covariance), f"d=1: {covariance} vs sklearn {want_covariance}"


@pytest.mark.parametrize("seed", [4, 6])
def test_full_shrinkage_scores_zero(seed):
    """Isotropic noise that Ledoit–Wolf shrinks completely (α = 1) has no between-class signal left."""
    f = torch.tensor(np.random.default_rng(seed).standard_normal((40, 30)))
    y = torch.arange(40) % 4
    _, alpha = ledoit_wolf(f - f.mean(0))
    _, want_alpha = R.ledoit_wolf(f - f.mean(0))
    assert alpha == want_alpha == 1.0, f"seed={seed}: alpha={alpha!r}, sklearn={want_alpha!r}; the case needs 1"
    got, want = h_score(f, y), R.h_score(f, y)
    assert got == want == 0.0, f"seed={seed}: alpha=1 but hscore={got!r}, reference={want!r}, expected 0"


@pytest.mark.parametrize("case", [c for c in CASES if c.n <= c.d], ids=lambda c: c.id)
def test_plain_score_saturates_at_classes_minus_one_with_fewer_samples_than_dimensions(case):
    """The pathology the shrinkage fixes: with n ≤ d any features "explain" the labels perfectly."""
    f, y = case_inputs(case)
    plain, shrunk = h_score_plain(f, y), h_score(f, y)
    assert math.isclose(plain, case.classes - 1, rel_tol=1e-6), f"{case.id}: plain={plain!r}, expected C-1"
    assert shrunk < plain, f"{case.id}: shrinkage H-score {shrunk!r} not below the saturated {plain!r}"


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize(("n", "d", "classes"), [(80, 8, 3), (200, 16, 6)])
def test_separable_features_score_higher_than_random_ones(n, d, classes, name):
    estimator, _ = ESTIMATORS[name]
    separated, y = clusters(30, n, d, classes, separation=12.0)
    random = torch.tensor(np.random.default_rng(31).standard_normal((n, d)))
    good, bad = estimator(separated, y), estimator(random, y)
    assert good > bad, f"{name}: separable clusters scored {good!r}, random features {bad!r}: expected higher"


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: c.id)
def test_invariant_to_permuting_and_relabelling_class_ids(case, name):
    estimator, _ = ESTIMATORS[name]
    f, y = case_inputs(case)
    base = estimator(f, y)
    permutation = torch.tensor(np.random.default_rng(case.seed).permutation(case.classes))
    permuted, shifted = estimator(f, permutation[y]), estimator(f, y + 5)
    assert math.isclose(permuted, base, rel_tol=1e-9), f"{name} permuted ids: {permuted!r} vs {base!r}"
    assert math.isclose(shifted, base, rel_tol=1e-9), f"{name} ids 5..: {shifted!r} vs {base!r}"


@pytest.mark.parametrize("name", ESTIMATORS)
def test_a_single_class_is_a_data_error(name):
    estimator, _ = ESTIMATORS[name]
    f, _ = case_inputs(CASES[0])
    with pytest.raises(DataError, match=f"^{name}:.*single class"):
        estimator(f, torch.full((len(f),), 2))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_nan_features_are_a_data_error(name):
    estimator, _ = ESTIMATORS[name]
    f, y = case_inputs(CASES[0])
    f[0, 0] = float("nan")
    with pytest.raises(DataError, match=f"^{name}:.*NaN"):
        estimator(f, y)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_mismatched_lengths_are_a_data_error(name):
    estimator, _ = ESTIMATORS[name]
    f, y = case_inputs(CASES[0])
    with pytest.raises(DataError, match=f"^{name}:.*must pair up"):
        estimator(f, y[1:])


@pytest.mark.parametrize("name", ESTIMATORS)
def test_multi_hot_labels_are_a_data_error(name):
    estimator, _ = ESTIMATORS[name]
    f, y = case_inputs(CASES[0])
    with pytest.raises(DataError, match=f"^{name}:.*multi-label"):
        estimator(f, torch.nn.functional.one_hot(y).double())
