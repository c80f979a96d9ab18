"""LogME (You et al., ICML 2021): the log marginal evidence of a Bayesian linear model on frozen features.

For each target column ``y`` (one-hot per class, or each label of multi-label data) the model is
``y = F w + ε`` with prior ``w ~ N(0, α⁻¹ I)`` and noise ``ε ~ N(0, β⁻¹ I)``. The evidence

    L(α, β) = n/2 log β + d/2 log α − n/2 log 2π − β/2 ‖F m − y‖² − α/2 ‖m‖² − 1/2 log |A|,
    A = α I + β FᵀF,  m = β A⁻¹ Fᵀ y,

is maximised over ``α, β`` by the fixed-point iteration of the paper (γ = Σ βσᵢ / (α + βσᵢ), α ← γ / ‖m‖²,
β ← (n − γ) / ‖F m − y‖², σᵢ the eigenvalues of FᵀF), run on one eigendecomposition of ``F``'s Gram
matrix for every column at once. The score is the mean over columns of ``L / n``; higher means the
features fit the labels with a simpler model.

As in the authors' code: at most 11 iterations from ``α = β = 1``, stopping when ``α/β`` moves by at most 0.1 %,
with 1e-5 added to both denominators (a perfectly fitted column would divide by zero). Unlike that code,
``log |A|`` counts all ``d`` eigenvalues (the ``d − n`` zero ones contribute ``log α`` each), as the paper's
formula says, and the evidence is evaluated at the final ``α, β`` with their own ``m``.
"""

from __future__ import annotations

import math

import torch

from transferlab.ranking.labels import check_features, class_indices

ITERATIONS = 11
TOLERANCE = 1e-3
EPSILON = 1e-5


def _targets(labels: torch.Tensor) -> torch.Tensor:
    """``(n, K)`` float64 targets: one-hot columns of class indices, or the multi-hot matrix as it is."""
    if labels.ndim == 2:
        return labels.double()
    index, classes = class_indices(labels, "logme")
    return torch.nn.functional.one_hot(index, classes).double()


def logme(features: torch.Tensor, labels: torch.Tensor) -> float:
    """The LogME score of ``features`` for ``labels`` (see the module docstring).

    Args:
        features: ``(n, d)`` frozen features of the target training images.
        labels: ``(n,)`` class indices, or ``(n, L)`` 0/1 multi-label targets.

    Returns:
        The mean per-sample log evidence (higher is better).

    Raises:
        DataError: For mismatched shapes, non-finite features or a single class.
    """
    f = check_features(features, labels, "logme")
    y = _targets(labels)
    n, d = f.shape
    sigma, x = _spectrum(f, y)
    rank = len(sigma)
    sigma = sigma.unsqueeze(1)  # (k, 1)
    x2 = x * x
    outside = (y * y).sum(0) - x2.sum(0)  # the part of ‖y‖² outside F's column space
    columns = y.shape[1]
    alpha = torch.ones(columns, dtype=f.dtype)
    beta = torch.ones(columns, dtype=f.dtype)
    active = torch.ones(columns, dtype=torch.bool)
    for _ in range(ITERATIONS):
        t = alpha / beta
        gamma, m2, res2 = _statistics(sigma, x2, outside, t)
        new_alpha = gamma / (m2 + EPSILON)
        new_beta = (n - gamma) / (res2 + EPSILON)
        alpha = torch.where(active, new_alpha, alpha)
        beta = torch.where(active, new_beta, beta)
        active = active & ((new_alpha / new_beta - t).abs() / t > TOLERANCE)
        if not active.any():
            break
    _, m2, res2 = _statistics(sigma, x2, outside, alpha / beta)
    log_det = torch.log(alpha + beta * sigma).sum(0) + (d - rank) * torch.log(alpha)
    evidence = (
        n / 2 * torch.log(beta)
        + d / 2 * torch.log(alpha)
        - n / 2 * math.log(2 * math.pi)
        - beta / 2 * res2
        - alpha / 2 * m2
        - log_det / 2
    )
    return float((evidence / n).mean())


def _spectrum(f: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The non-zero eigenvalues ``σ`` of ``FᵀF`` and the targets in ``F``'s left singular basis, ``Uᵀy``.

    From the eigendecomposition of the smaller Gram matrix (``F Fᵀ`` or ``FᵀF``): much faster than an SVD of
    ``F`` and the same numbers. Eigenvalues at rounding level are dropped; their ``log α`` terms are counted
    with the other zero ones.
    """
    n, d = f.shape
    if n <= d:
        sigma, u = torch.linalg.eigh(f @ f.T)
        keep = sigma > sigma.max() * max(n, d) * torch.finfo(f.dtype).eps
        return sigma[keep], u[:, keep].T @ y
    sigma, v = torch.linalg.eigh(f.T @ f)
    keep = sigma > sigma.max() * max(n, d) * torch.finfo(f.dtype).eps
    sigma, v = sigma[keep], v[:, keep]
    return sigma, (f @ v).T @ y / sigma.sqrt().unsqueeze(1)  # Uᵀy = (F V / s)ᵀ y


def _statistics(
    sigma: torch.Tensor, x2: torch.Tensor, outside: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """γ, ‖m‖² and ‖F m − y‖² per column at ``t = α/β`` (``m = V diag(s / (σ + t)) Uᵀy``)."""
    gamma = (sigma / (sigma + t)).sum(0)
    m2 = (sigma * x2 / (sigma + t) ** 2).sum(0)
    res2 = (x2 * (t / (sigma + t)) ** 2).sum(0) + outside
    return gamma, m2, res2
