"""GBC against sklearn's PCA and a literal pairwise Bhattacharyya-coefficient sum (Pándy et al.)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.ranking import references as R
from tests.ranking.inputs import CASES, case_inputs, clusters
from transferlab.errors import ConfigError, DataError
from transferlab.ranking import gbc

RTOL = 1e-9

#: (dims, gaussian): PCA below min(n, d), at or above it (only centring), and no PCA at all; 12 is exactly
#: min(n, d) of the first case (centring, not a rotation, which the diagonal model would notice).
OPTIONS = [(64, "spherical"), (8, "spherical"), (None, "spherical"), (8, "diagonal"), (3, "diagonal"), (12, "diagonal")]


def _close(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=RTOL, abs_tol=1e-12)


@pytest.mark.parametrize(("dims", "gaussian"), OPTIONS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_the_reference_on_random_features(case, dims, gaussian):
    f, y = case_inputs(case)
    got, want = gbc(f, y, dims=dims, gaussian=gaussian), R.gbc(f, y, dims=dims, gaussian=gaussian)
    assert isinstance(got, float), f"gbc returns {type(got)}, not a Python float"
    assert _close(got, want), f"{case.id} dims={dims} {gaussian}: gbc={got!r}, reference={want!r}"


@pytest.mark.parametrize("case", [c for c in CASES if c.d <= 20], ids=lambda c: c.id)
def test_diagonal_without_pca_matches_the_reference(case):
    f, y = case_inputs(case)
    got, want = gbc(f, y, dims=None, gaussian="diagonal"), R.gbc(f, y, dims=None, gaussian="diagonal")
    assert _close(got, want), f"{case.id} dims=None diagonal: gbc={got!r}, reference={want!r}"


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: c.id)
def test_spherical_reference_agrees_with_its_matrix_form(case):
    """A check of the reference itself: σ broadcast over dims is the Bhattacharyya distance of σ I."""
    f, y = case_inputs(case)
    scalar, matrix = R.gbc(f, y, dims=8), R.gbc(f, y, dims=8, matrix=True)
    assert math.isclose(scalar, matrix, rel_tol=1e-9), f"{case.id}: scalar form {scalar!r}, matrix form {matrix!r}"


@pytest.mark.parametrize(("dims", "gaussian"), OPTIONS)
@pytest.mark.parametrize(("seed", "n", "d", "classes"), [(10, 60, 8, 3), (11, 20, 40, 4), (12, 150, 32, 10)])
def test_matches_the_reference_on_gaussian_clusters(seed, n, d, classes, dims, gaussian):
    f, y = clusters(seed, n, d, classes, separation=5.0)
    got, want = gbc(f, y, dims=dims, gaussian=gaussian), R.gbc(f, y, dims=dims, gaussian=gaussian)
    assert _close(got, want), f"clusters seed={seed} dims={dims} {gaussian}: gbc={got!r}, reference={want!r}"


@pytest.mark.parametrize("gaussian", ["spherical", "diagonal"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_lies_between_minus_c_times_c_minus_one_and_zero(case, gaussian):
    f, y = case_inputs(case)
    got = gbc(f, y, dims=8, gaussian=gaussian)
    lowest = -case.classes * (case.classes - 1)
    assert lowest <= got <= 0.0, f"{case.id} {gaussian}: gbc={got!r} outside [{lowest}, 0]"


@pytest.mark.parametrize("gaussian", ["spherical", "diagonal"])
def test_identical_classes_overlap_completely(gaussian):
    f = torch.tensor(np.random.default_rng(20).standard_normal((30, 6)))
    twice, y = torch.cat([f, f, f]), torch.arange(3).repeat_interleave(30)
    got = gbc(twice, y, dims=4, gaussian=gaussian)
    assert math.isclose(got, -6.0, rel_tol=1e-9), f"{gaussian}: 3 identical classes gave {got!r}, expected -6"


@pytest.mark.parametrize("gaussian", ["spherical", "diagonal"])
@pytest.mark.parametrize(("n", "d", "classes"), [(60, 8, 3), (40, 64, 5)])
def test_separable_features_score_higher_than_random_ones_and_near_zero(n, d, classes, gaussian):
    separated, y = clusters(30, n, d, classes, separation=40.0)
    random = torch.tensor(np.random.default_rng(31).standard_normal((n, d)))
    good, bad = gbc(separated, y, gaussian=gaussian), gbc(random, y, gaussian=gaussian)
    assert good > bad, f"{gaussian}: separable clusters scored {good!r}, random features {bad!r}: expected higher"
    assert good > -1e-3, f"{gaussian}: well separated clusters scored {good!r}, expected close to 0"


@pytest.mark.parametrize("gaussian", ["spherical", "diagonal"])
@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: c.id)
def test_invariant_to_permuting_and_relabelling_class_ids(case, gaussian):
    f, y = case_inputs(case)
    base = gbc(f, y, dims=8, gaussian=gaussian)
    permutation = torch.tensor(np.random.default_rng(case.seed).permutation(case.classes))
    permuted, shifted = gbc(f, permutation[y], dims=8, gaussian=gaussian), gbc(f, y + 5, dims=8, gaussian=gaussian)
    assert math.isclose(permuted, base, rel_tol=1e-9), f"{gaussian} permuted ids: {permuted!r} vs {base!r}"
    assert math.isclose(shifted, base, rel_tol=1e-9), f"{gaussian} ids 5..: {shifted!r} vs {base!r}"


def test_default_is_64_spherical_dimensions():
    f, y = case_inputs(CASES[4])  # n=120, d=16: 64 ≥ d, so only centring
    got, want = gbc(f, y), R.gbc(f, y, dims=64, gaussian="spherical")
    assert _close(got, want), f"defaults: gbc={got!r}, reference(64, spherical)={want!r}"


@pytest.mark.parametrize("gaussian", ["full", "Spherical", "", None])
def test_a_bad_gaussian_is_a_config_error(gaussian):
    f, y = case_inputs(CASES[0])
    with pytest.raises(ConfigError, match=r"gbc_gaussian"):
        gbc(f, y, gaussian=gaussian)


@pytest.mark.parametrize("dims", [0, -3, 2.5, True, "8"])
def test_a_bad_dims_is_a_config_error(dims):
    f, y = case_inputs(CASES[0])
    with pytest.raises(ConfigError, match=r"gbc_dims"):
        gbc(f, y, dims=dims)


def test_a_single_class_is_a_data_error():
    f, _ = case_inputs(CASES[0])
    with pytest.raises(DataError, match=r"^gbc:.*single class"):
        gbc(f, torch.zeros(len(f), dtype=torch.long))


def test_nan_features_are_a_data_error():
    f, y = case_inputs(CASES[0])
    f[4] = float("inf")
    f[7, 1] = float("nan")
    with pytest.raises(DataError, match=r"^gbc: 2 of 40 feature rows hold NaN"):
        gbc(f, y)


def test_mismatched_lengths_are_a_data_error():
    f, y = case_inputs(CASES[0])
    with pytest.raises(DataError, match=r"^gbc:.*must pair up"):
        gbc(f, y[:-1])


def test_multi_hot_labels_are_a_data_error():
    f, y = case_inputs(CASES[0])
    with pytest.raises(DataError, match=r"^gbc:.*multi-label"):
        gbc(f, torch.nn.functional.one_hot(y).double())
