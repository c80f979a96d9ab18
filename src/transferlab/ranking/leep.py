"""LEEP (Nguyen et al., ICML 2020): the log expected empirical prediction of the source classifier.

With ``θ(x)`` the source model's class probabilities (its own head, e.g. ImageNet's 1000 classes) on the target
training images, the empirical joint of target label ``y`` and source label ``z`` is
``P(y, z) = 1/n Σᵢ θ(xᵢ)_z [yᵢ = y]``, the conditional ``P(y | z) = P(y, z) / P(z)``, and

    LEEP = 1/n Σᵢ log Σ_z P(yᵢ | z) θ(xᵢ)_z,

the average log-likelihood of the "expected empirical predictor" that relabels source predictions as target
labels. It is ≤ 0; higher is better. It needs the source classifier: a backbone without a head has no LEEP.
"""

from __future__ import annotations

import torch

from transferlab.ranking.labels import check_probabilities, class_indices

#: Keeps a source class no target image predicts from dividing by zero (its row of P(y | z) is never used).
_TINY = 1e-300


def leep(source_probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """The LEEP score (see the module docstring).

    Args:
        source_probabilities: ``(n, Z)`` softmax outputs of the source classifier on the target images.
        labels: ``(n,)`` target class indices.

    Raises:
        DataError: For mismatched shapes, rows that are not probabilities, or a single class.
    """
    theta = check_probabilities(source_probabilities, labels, "leep")
    index, classes = class_indices(labels, "leep")
    n = len(theta)
    one_hot = torch.nn.functional.one_hot(index, classes).double()  # (n, C)
    joint = one_hot.T @ theta / n  # (C, Z): P(y, z)
    conditional = joint / joint.sum(0, keepdim=True).clamp_min(_TINY)  # P(y | z)
    expected = (theta @ conditional.T).gather(1, index.unsqueeze(1)).squeeze(1)  # Σ_z P(yᵢ|z) θᵢ_z
    return float(torch.log(expected).mean())
