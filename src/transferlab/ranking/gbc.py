"""GBC (Pándy et al., CVPR 2022): Gaussian Bhattacharyya coefficients between the target classes.

Each class's features are modelled as a Gaussian with its mean and a diagonal variance (``spherical``: one
variance, the mean of the diagonal — the authors' default; ``diagonal``: per dimension), floored at 1e-4 as in
the authors' code. The Bhattacharyya distance of two classes is

    D_B = 1/8 Σ (μ₁ − μ₂)² / σ + 1/2 (Σ log σ − 1/2 Σ log σ₁ − 1/2 Σ log σ₂),  σ = (σ₁ + σ₂) / 2,

their overlap ``BC = exp(−D_B)``, and ``GBC = −Σᵢ Σ_{j ≠ i} BC(cᵢ, cⱼ)``: 0 for perfectly separated classes,
more negative the more they overlap; higher is better. As in the paper the features are first reduced by PCA
(to ``dims`` components, 64 by default), so that the diagonal model is fitted where the variance is.
"""

from __future__ import annotations

from typing import Literal

import torch

from transferlab.errors import ConfigError
from transferlab.ranking.labels import check_features, class_indices

VARIANCE_FLOOR = 1e-4
Gaussian = Literal["spherical", "diagonal"]


def principal_components(f: torch.Tensor, dims: int | None) -> torch.Tensor:
    """``f`` centred and projected on its first ``dims`` principal axes (all when ``dims`` is ``None`` or larger)."""
    centred = f - f.mean(0)
    if dims is None or dims >= min(centred.shape):
        return centred
    if len(centred) > centred.shape[1]:  # many samples: the d × d covariance's eigenvectors
        _, vectors = torch.linalg.eigh(centred.T @ centred)
        return centred @ vectors[:, -dims:].flip(1)
    # few samples: the n × n Gram matrix's eigenvectors are the scores' directions (U S of the SVD)
    values, vectors = torch.linalg.eigh(centred @ centred.T)
    return vectors[:, -dims:].flip(1) * values[-dims:].flip(0).clamp_min(0).sqrt()


def gbc(features: torch.Tensor, labels: torch.Tensor, dims: int | None = 64, gaussian: Gaussian = "spherical") -> float:
    """The GBC score (see the module docstring).

    Args:
        features: ``(n, d)`` frozen features.
        labels: ``(n,)`` class indices.
        dims: PCA components kept (``None``: no reduction).
        gaussian: ``spherical`` or ``diagonal`` class covariances.

    Raises:
        ConfigError: For a bad ``dims`` or ``gaussian``.
        DataError: For mismatched shapes, non-finite features or a single class.
    """
    if gaussian not in ("spherical", "diagonal"):
        raise ConfigError(f"ranking.gbc_gaussian={gaussian!r}: expected spherical or diagonal.")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise ConfigError(f"ranking.gbc_dims={dims!r}: expected a positive integer, or null for no PCA.")
    f = principal_components(check_features(features, labels, "gbc"), dims)
    index, classes = class_indices(labels, "gbc")
    counts = torch.bincount(index, minlength=classes).double().unsqueeze(1)
    means = torch.zeros(classes, f.shape[1], dtype=f.dtype).index_add_(0, index, f) / counts
    deviations = f - means[index]  # two passes: E[x²] − E[x]² would cancel digits
    squares = torch.zeros_like(means).index_add_(0, index, deviations * deviations) / counts
    variances = squares.clamp_min(VARIANCE_FLOOR)  # the population variance (1/n), as in the authors' code
    if gaussian == "spherical":
        variances = variances.mean(1, keepdim=True)
    width = f.shape[1]
    log_var = torch.log(variances).sum(1) if gaussian == "diagonal" else width * torch.log(variances[:, 0])
    pair = (variances.unsqueeze(1) + variances.unsqueeze(0)) / 2  # (C, C, d or 1)
    difference = (means.unsqueeze(1) - means.unsqueeze(0)) ** 2  # (C, C, d)
    first = (difference / pair).sum(2) / 8
    log_pair = torch.log(pair).sum(2) if gaussian == "diagonal" else width * torch.log(pair[..., 0])
    second = log_pair - 0.5 * log_var.unsqueeze(1) - 0.5 * log_var.unsqueeze(0)
    coefficient = torch.exp(-(first + 0.5 * second))
    off_diagonal = ~torch.eye(classes, dtype=torch.bool)
    return float(-coefficient[off_diagonal].sum())
