"""H-score (Bao et al., ICIP 2019) and its shrinkage form (Ibrahim et al., ICLR 2023).

H-score asks how much of the features' variance lies between the class means:

    H(f) = tr(cov(f)⁻¹ cov(E[f | y])).

With fewer images than feature dimensions (every few-shot task) the sample covariance is singular and its
pseudo-inverse amplifies noise directions, so the plain score ranks models by their dimension more than by
their features. The shrinkage H-score replaces ``cov(f)`` by the Ledoit–Wolf estimate
``cov_α = (1 − α) S + α μ I`` (``S`` the 1/n sample covariance of the centred features, ``μ = tr(S) / d``, ``α``
Ledoit and Wolf's optimal shrinkage) and scales the between-class covariance by ``1 − α``:

    H_α(f) = tr(cov_α⁻¹ (1 − α) cov(E[f | y])).

``hscore`` in the ``rank`` command is the shrinkage form; ``hscore_plain`` is Bao et al.'s. Higher is better.
"""

from __future__ import annotations

import torch

from transferlab.ranking.labels import check_features, class_indices

#: Singular values below this fraction of the largest are dropped by the pseudo-inverse (numpy's rcond).
RCOND = 1e-15


def _between(f: torch.Tensor, labels: torch.Tensor, name: str) -> torch.Tensor:
    """``M`` with ``M Mᵀ = cov(E[f | y])`` (1/(n − 1) normalisation): one column per class."""
    index, classes = class_indices(labels, name)
    n = len(f)
    counts = torch.bincount(index, minlength=classes).double()
    sums = torch.zeros(classes, f.shape[1], dtype=f.dtype).index_add_(0, index, f)
    means = sums / counts.unsqueeze(1)
    centred = means - f.mean(0)  # E[g] = E[f]: every sample's class mean, averaged, is the overall mean
    return (centred * (counts / (n - 1)).sqrt().unsqueeze(1)).T  # (d, C)


def _trace_pinv(matrix: torch.Tensor, m: torch.Tensor) -> float:
    """``tr(pinv(matrix) M Mᵀ)`` for a symmetric PSD ``matrix``."""
    values, vectors = torch.linalg.eigh(matrix)
    keep = values > RCOND * values.abs().max()
    projected = vectors[:, keep].T @ m  # (r, C)
    return float(((projected * projected) / values[keep].unsqueeze(1)).sum())


def h_score_plain(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Bao et al.'s H-score with the pseudo-inverse of the sample covariance (1/(n − 1)).

    Args:
        features: ``(n, d)`` frozen features.
        labels: ``(n,)`` class indices.

    Raises:
        DataError: For mismatched shapes, non-finite features or a single class.
    """
    f = check_features(features, labels, "hscore_plain")
    m = _between(f, labels, "hscore_plain")
    centred = f - f.mean(0)
    covariance = centred.T @ centred / (len(f) - 1)
    return _trace_pinv(covariance, m)


def ledoit_wolf(centred: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The Ledoit–Wolf shrunk covariance of centred ``(n, d)`` data and its shrinkage ``α`` in [0, 1].

    Ledoit & Wolf (2004), "A well-conditioned estimator for large-dimensional covariance matrices", with the
    target ``μ I`` (``μ`` the mean variance).
    """
    n, d = centred.shape
    sample = centred.T @ centred / n
    mu = float(torch.diagonal(sample).sum()) / d
    squared = centred * centred
    delta = float(((sample * sample).sum() - 2 * mu * torch.diagonal(sample).sum() + d * mu * mu) / d)
    beta = float(((squared.T @ squared).sum() / n - (sample * sample).sum()) / (d * n))
    beta = min(beta, delta)
    alpha = 0.0 if beta == 0 else beta / delta
    shrunk = (1 - alpha) * sample
    shrunk.diagonal().add_(alpha * mu)
    return shrunk, alpha


def h_score(features: torch.Tensor, labels: torch.Tensor) -> float:
    """The shrinkage H-score ``H_α`` (see the module docstring).

    Args:
        features: ``(n, d)`` frozen features.
        labels: ``(n,)`` class indices.

    Raises:
        DataError: For mismatched shapes, non-finite features or a single class.
    """
    f = check_features(features, labels, "hscore")
    m = _between(f, labels, "hscore")
    covariance, alpha = ledoit_wolf(f - f.mean(0))
    if alpha > 0:  # positive definite: a Cholesky solve, much faster than the eigendecomposition
        factor, info = torch.linalg.cholesky_ex(covariance)
        if int(info) == 0:
            solved = torch.cholesky_solve(m, factor)
            return float((1 - alpha) * (m * solved).sum())
    return (1 - alpha) * _trace_pinv(covariance, m)
