"""Slow, literal float64 numpy references of the transferability estimators, written from the papers' formulas.

Nothing here imports ``transferlab``: every function loops over samples, classes or pairs and uses explicit
inverses and determinants, so that it shares no code (and no shortcut) with ``src/transferlab/ranking``.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA


def as_numpy(x) -> np.ndarray:
    """A float64 copy of a tensor or array (the values the estimator sees after its own float64 cast)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.array(x, dtype=np.float64)


def one_hot_columns(labels: np.ndarray) -> list[np.ndarray]:
    """One 0/1 column per distinct class id, in order of the id."""
    return [np.array([1.0 if label == c else 0.0 for label in labels]) for c in sorted(set(labels.tolist()))]


# ----------------------------------------------------------------------------------------------------------------
# LogME (You et al., ICML 2021)
# ----------------------------------------------------------------------------------------------------------------
def logme_column(features: np.ndarray, y: np.ndarray) -> float:
    """``L / n`` of one target column: the fixed-point iteration and the evidence, literally."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = f.shape
    ftf = f.T @ f
    eigenvalues = np.linalg.eigvalsh(ftf)  # all d of them
    identity = np.eye(d)
    alpha, beta = 1.0, 1.0
    for _ in range(11):
        a = alpha * identity + beta * ftf
        m = beta * np.linalg.inv(a) @ f.T @ y
        gamma = 0.0
        for lam in eigenvalues:
            gamma += beta * lam / (alpha + beta * lam)
        residual = y - f @ m
        new_alpha = gamma / (float(m @ m) + 1e-5)
        new_beta = (n - gamma) / (float(residual @ residual) + 1e-5)
        ratio = alpha / beta
        converged = abs(new_alpha / new_beta - ratio) / ratio <= 1e-3
        alpha, beta = new_alpha, new_beta
        if converged:
            break
    a = alpha * identity + beta * ftf
    m = beta * np.linalg.inv(a) @ f.T @ y
    residual = f @ m - y
    sign, log_det = np.linalg.slogdet(a)
    assert sign > 0, "A = αI + βFᵀF must be positive definite"
    evidence = (
        n / 2 * math.log(beta)
        + d / 2 * math.log(alpha)
        - n / 2 * math.log(2 * math.pi)
        - beta / 2 * float(residual @ residual)
        - alpha / 2 * float(m @ m)
        - log_det / 2
    )
    return evidence / n


def logme(features, labels) -> float:
    """Mean over target columns (one-hot classes, or the columns of a multi-hot matrix) of ``L / n``."""
    f = as_numpy(features)
    y = as_numpy(labels)
    columns = [y[:, k] for k in range(y.shape[1])] if y.ndim == 2 else one_hot_columns(y.astype(np.int64))
    return float(np.mean([logme_column(f, column) for column in columns]))


# ----------------------------------------------------------------------------------------------------------------
# LEEP (Nguyen et al., ICML 2020) and NCE (Tran et al., ICCV 2019)
# ----------------------------------------------------------------------------------------------------------------
def leep(source_probabilities, labels) -> float:
    """1/n Σᵢ log Σ_z P(yᵢ | z) θᵢ_z with P(y, z) = 1/n Σᵢ θᵢ_z [yᵢ = y], by loops."""
    theta = as_numpy(source_probabilities)
    y = as_numpy(labels).astype(np.int64)
    n, source_classes = theta.shape
    targets = sorted(set(y.tolist()))
    joint = {}
    for t in targets:
        for z in range(source_classes):
            total = 0.0
            for i in range(n):
                if y[i] == t:
                    total += theta[i, z]
            joint[t, z] = total / n
    marginal = [sum(joint[t, z] for t in targets) for z in range(source_classes)]
    total = 0.0
    for i in range(n):
        expected = 0.0
        for z in range(source_classes):
            if marginal[z] > 0:
                expected += joint[y[i], z] / marginal[z] * theta[i, z]
        total += math.log(expected)
    return total / n


def nce(source_probabilities, labels) -> float:
    """Σ_{y, z: P(y,z) > 0} P(y, z) log(P(y, z) / P(z)) of the (target, argmax source) label pairs, by loops."""
    theta = as_numpy(source_probabilities)
    y = as_numpy(labels).astype(np.int64)
    n = len(y)
    z = [int(np.argmax(row)) for row in theta]
    counts: dict[tuple[int, int], int] = {}
    source_counts: dict[int, int] = {}
    for i in range(n):
        counts[int(y[i]), z[i]] = counts.get((int(y[i]), z[i]), 0) + 1
        source_counts[z[i]] = source_counts.get(z[i], 0) + 1
    total = 0.0
    for (_, source), count in counts.items():
        joint = count / n
        total += joint * math.log(joint / (source_counts[source] / n))
    return total


def entropy(labels) -> float:
    """H(Y) of the empirical label distribution (nats)."""
    y = as_numpy(labels).astype(np.int64).tolist()
    n = len(y)
    return -sum(y.count(c) / n * math.log(y.count(c) / n) for c in set(y))


# ----------------------------------------------------------------------------------------------------------------
# H-score (Bao et al., ICIP 2019) and the shrinkage H-score (Ibrahim et al., ICLR 2023)
# ----------------------------------------------------------------------------------------------------------------
def class_mean_features(f: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """g: every sample replaced by the mean feature of its class (a loop over classes and samples)."""
    g = np.zeros_like(f)
    for c in set(labels.tolist()):
        members = [i for i in range(len(labels)) if labels[i] == c]
        mean = np.zeros(f.shape[1])
        for i in members:
            mean += f[i]
        mean /= len(members)
        for i in members:
            g[i] = mean
    return g


def h_score_plain(features, labels) -> float:
    """tr(pinv(cov(f)) cov(g)), numpy's cov (1/(n − 1)) and pinv (rcond 1e-15)."""
    f = as_numpy(features)
    y = as_numpy(labels).astype(np.int64)
    g = class_mean_features(f, y)
    cov_f = np.atleast_2d(np.cov(f, rowvar=False))
    cov_g = np.atleast_2d(np.cov(g, rowvar=False))
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-15) @ cov_g))


def ledoit_wolf(centred) -> tuple[np.ndarray, float]:
    """sklearn's Ledoit–Wolf covariance and shrinkage of ``centred``."""
    estimator = LedoitWolf(assume_centered=False).fit(as_numpy(centred))
    return estimator.covariance_, float(estimator.shrinkage_)


def h_score(features, labels) -> float:
    """tr(pinv(cov_α) (1 − α) cov(g)) with sklearn's Ledoit–Wolf cov_α and α of the centred features."""
    f = as_numpy(features)
    y = as_numpy(labels).astype(np.int64)
    f = f - f.mean(0)
    covariance, alpha = ledoit_wolf(f)
    g = class_mean_features(f, y)
    cov_g = np.atleast_2d(np.cov(g, rowvar=False))
    return float(np.trace(np.linalg.pinv(covariance, rcond=1e-15) @ ((1 - alpha) * cov_g)))


# ----------------------------------------------------------------------------------------------------------------
# GBC (Pándy et al., CVPR 2022)
# ----------------------------------------------------------------------------------------------------------------
def gbc_reduce(features, dims: int | None) -> np.ndarray:
    """sklearn's full-SVD PCA to ``dims`` components when ``dims < min(n, d)``, else only centring."""
    f = as_numpy(features)
    if dims is not None and dims < min(f.shape):
        return PCA(n_components=dims, svd_solver="full").fit_transform(f)
    return f - f.mean(0)


def gbc_class_statistics(f: np.ndarray, labels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per class (in id order): the mean and the population variance (ddof 0) per dimension, floored at 1e-4."""
    statistics = []
    for c in sorted(set(labels.tolist())):
        rows = f[[i for i in range(len(labels)) if labels[i] == c]]
        mean = rows.mean(0)
        variance = np.maximum(rows.var(0, ddof=0), 1e-4)
        statistics.append((mean, variance))
    return statistics


def bhattacharyya_spherical(mu_i, s_i: float, mu_j, s_j: float) -> float:
    """D_B of two spherical Gaussians with scalar variances broadcast over ``len(mu)`` dimensions."""
    dims = len(mu_i)
    s = (s_i + s_j) / 2
    first = sum((mu_i[k] - mu_j[k]) ** 2 / s for k in range(dims)) / 8
    second = dims * math.log(s) - dims * math.log(s_i) / 2 - dims * math.log(s_j) / 2
    return first + second / 2


def bhattacharyya_matrix(mu_i, cov_i: np.ndarray, mu_j, cov_j: np.ndarray) -> float:
    """1/8 Δμᵀ Σ̄⁻¹ Δμ + 1/2 ln(det Σ̄ / sqrt(det Σᵢ det Σⱼ)): the Gaussian Bhattacharyya distance."""
    cov = (cov_i + cov_j) / 2
    delta = mu_i - mu_j
    det, det_i, det_j = np.linalg.det(cov), np.linalg.det(cov_i), np.linalg.det(cov_j)
    ratio = det / (math.sqrt(det_i) * math.sqrt(det_j))
    assert all(np.isfinite(v) and v > 0 for v in (det, det_i, det_j, ratio)), "determinants out of float64 range"
    return float(delta @ np.linalg.inv(cov) @ delta / 8 + 0.5 * math.log(ratio))


def gbc(features, labels, dims: int | None = 64, gaussian: str = "spherical", *, matrix: bool = False) -> float:
    """−Σᵢ Σ_{j≠i} exp(−D_B(cᵢ, cⱼ)).

    ``diagonal`` (and ``spherical`` with ``matrix=True``) use full diagonal covariance matrices, ``det`` and
    ``inv``; ``spherical`` by default uses the scalar formula.
    """
    f = gbc_reduce(features, dims)
    y = as_numpy(labels).astype(np.int64)
    statistics = gbc_class_statistics(f, y)
    total = 0.0
    for i, (mu_i, var_i) in enumerate(statistics):
        for j, (mu_j, var_j) in enumerate(statistics):
            if i == j:
                continue
            if gaussian == "spherical" and not matrix:
                distance = bhattacharyya_spherical(mu_i, float(np.mean(var_i)), mu_j, float(np.mean(var_j)))
            else:
                if gaussian == "spherical":
                    var_i, var_j = np.full(len(var_i), np.mean(var_i)), np.full(len(var_j), np.mean(var_j))
                distance = bhattacharyya_matrix(mu_i, np.diag(var_i), mu_j, np.diag(var_j))
            total += math.exp(-distance)
    return -total
