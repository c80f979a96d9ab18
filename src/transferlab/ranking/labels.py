"""The inputs every estimator checks the same way: features, labels, source probabilities.

Estimators get plain tensors from the caller (the ``rank`` command reads them from the feature cache); a bad
shape, a non-finite feature or a single class is a :class:`~transferlab.errors.DataError` that says what is
wrong and what to do, not a NaN score that ranks silently.
"""

from __future__ import annotations

import torch

from transferlab.errors import DataError


def check_features(features: torch.Tensor, labels: torch.Tensor, name: str) -> torch.Tensor:
    """``features`` as a float64 ``(n, d)`` matrix, checked against ``labels``.

    Raises:
        DataError: For a shape mismatch, fewer than 2 samples, or a non-finite feature.
    """
    if features.ndim != 2:
        features = features.flatten(1) if features.ndim > 2 else features.reshape(len(features), -1)
    if len(features) != len(labels):
        raise DataError(f"{name}: {len(features)} feature rows for {len(labels)} labels; they must pair up.")
    if len(features) < 2:
        raise DataError(f"{name}: needs at least 2 samples, got {len(features)}.")
    f = features.double()
    if not torch.isfinite(f).all():
        bad = int((~torch.isfinite(f)).any(1).sum())
        raise DataError(
            f"{name}: {bad} of {len(f)} feature rows hold NaN or inf: the backbone's features cannot be scored. "
            "Fix: check the weights (a diverged checkpoint) or the input preprocessing."
        )
    return f


def class_indices(labels: torch.Tensor, name: str) -> tuple[torch.Tensor, int]:
    """Labels renumbered ``0..C-1`` in order of their value, and ``C``.

    Renumbering makes every estimator blind to which ids the classes carry (a label permutation, or labels
    ``5..9``), and to classes the split does not contain.

    Raises:
        DataError: For multi-hot labels, or fewer than 2 distinct classes.
    """
    if labels.ndim != 1:
        raise DataError(
            f"{name}: expects one class index per sample, got labels of shape {tuple(labels.shape)} "
            "(multi-label data). Fix: rank multi-label data with logme only (ranking.estimators=[logme])."
        )
    values, index = torch.unique(labels.long(), return_inverse=True)
    if len(values) < 2:
        raise DataError(
            f"{name}: the labels hold a single class ({int(values[0]) if len(values) else 'none'}); "
            "transferability compares how well features separate classes, which needs at least 2. "
            "Fix: choose data with 2 or more classes (e.g. data.classes=[…])."
        )
    return index, len(values)


def check_probabilities(probabilities: torch.Tensor, labels: torch.Tensor, name: str) -> torch.Tensor:
    """Source-class probabilities as float64 ``(n, Z)``, rows summing to 1.

    Raises:
        DataError: For a shape mismatch, negative or non-finite values, or rows that do not sum to 1.
    """
    p = check_features(probabilities, labels, name)
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype), atol=1e-4):
        raise DataError(
            f"{name}: expects the source classifier's probabilities (softmax rows: non-negative, summing to 1); "
            "got other values. Fix: pass softmax(logits), not the logits."
        )
    return p
