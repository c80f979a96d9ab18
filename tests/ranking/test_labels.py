"""The shared input checks: feature shapes and values, class renumbering, probability rows."""

from __future__ import annotations

import pytest
import torch

from transferlab.errors import DataError
from transferlab.ranking.labels import check_features, check_probabilities, class_indices


def test_check_features_returns_float64_rows():
    f = torch.randn(6, 4)
    got = check_features(f, torch.arange(6), "x")
    assert got.dtype == torch.float64, f"dtype {got.dtype}, expected float64"
    assert torch.equal(got, f.double()), "check_features changed the values"


@pytest.mark.parametrize(("shape", "expected"), [((5,), (5, 1)), ((5, 2, 3), (5, 6)), ((5, 2, 2, 2), (5, 8))])
def test_check_features_reshapes_to_a_matrix(shape, expected):
    got = check_features(torch.randn(*shape), torch.zeros(5), "x")
    assert tuple(got.shape) == expected, f"features of shape {shape} became {tuple(got.shape)}, expected {expected}"


def test_check_features_rejects_mismatched_lengths():
    with pytest.raises(DataError, match=r"^est: 4 feature rows for 5 labels"):
        check_features(torch.randn(4, 3), torch.zeros(5), "est")


def test_check_features_needs_two_samples():
    with pytest.raises(DataError, match=r"^est: needs at least 2 samples, got 1"):
        check_features(torch.randn(1, 3), torch.zeros(1), "est")


def test_check_features_counts_non_finite_rows():
    f = torch.randn(10, 3)
    f[1, 0], f[1, 2], f[8, 1] = float("nan"), float("inf"), -float("inf")
    with pytest.raises(DataError, match=r"^est: 2 of 10 feature rows hold NaN or inf"):
        check_features(f, torch.zeros(10), "est")


@pytest.mark.parametrize(
    ("labels", "index", "classes"),
    [
        ([7, 3, 7, 9], [1, 0, 1, 2], 3),
        ([5, 6, 7, 8, 9, 5], [0, 1, 2, 3, 4, 0], 5),
        ([1, 0, 1, 0], [1, 0, 1, 0], 2),
        ([-1, 2, 2], [0, 1, 1], 2),
    ],
)
def test_class_indices_renumber_in_order_of_value(labels, index, classes):
    got, count = class_indices(torch.tensor(labels), "x")
    assert got.tolist() == index, f"{labels} renumbered to {got.tolist()}, expected {index}"
    assert count == classes, f"{labels}: {count} classes, expected {classes}"


def test_class_indices_accept_float_class_ids():
    got, count = class_indices(torch.tensor([2.0, 0.0, 2.0]), "x")
    assert (got.tolist(), count) == ([1, 0, 1], 2), f"float ids gave {got.tolist()}, {count}"


def test_class_indices_reject_multi_hot_labels():
    with pytest.raises(DataError, match=r"^est: .*shape \(3, 2\).*multi-label"):
        class_indices(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), "est")


@pytest.mark.parametrize(("labels", "shown"), [([4, 4, 4], "4"), ([], "none")])
def test_class_indices_reject_fewer_than_two_classes(labels, shown):
    with pytest.raises(DataError, match=rf"^est: the labels hold a single class \({shown}\)"):
        class_indices(torch.tensor(labels, dtype=torch.long), "est")


def test_check_probabilities_accepts_softmax_rows_within_tolerance():
    p = torch.softmax(torch.randn(8, 5), 1)
    p[0] *= 1 + 5e-5
    got = check_probabilities(p, torch.zeros(8), "x")
    assert got.dtype == torch.float64, f"dtype {got.dtype}, expected float64"


@pytest.mark.parametrize(
    "probabilities",
    [
        torch.randn(6, 4),  # logits
        torch.tensor([[1.5, -0.5]] * 6),  # rows sum to 1 but one entry is negative
        torch.softmax(torch.randn(6, 4), 1) * (1 + 1e-3),  # rows sum to 1.001
    ],
)
def test_check_probabilities_rejects_non_probabilities(probabilities):
    with pytest.raises(DataError, match=r"^est: expects the source classifier's probabilities.*softmax\(logits\)"):
        check_probabilities(probabilities, torch.zeros(6), "est")
