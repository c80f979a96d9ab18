"""NCE (Tran et al., ICCV 2019): the negative conditional entropy of target labels given source labels.

Each target training image gets the source classifier's most probable class ``zᵢ = argmax θ(xᵢ)`` as its
source label; with the empirical joint ``P(y, z)`` of (target, source) label pairs,

    NCE = −H(Y | Z) = Σ_{y, z} P(y, z) log P(y | z).

It is ≤ 0, and 0 when the source label determines the target label; higher is better. Like LEEP it needs the
source classifier.
"""

from __future__ import annotations

import torch

from transferlab.ranking.labels import check_probabilities, class_indices


def nce(source_probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """The NCE score (see the module docstring).

    Args:
        source_probabilities: ``(n, Z)`` softmax outputs of the source classifier on the target images.
        labels: ``(n,)`` target class indices.

    Raises:
        DataError: For mismatched shapes, rows that are not probabilities, or a single class.
    """
    theta = check_probabilities(source_probabilities, labels, "nce")
    index, classes = class_indices(labels, "nce")
    source = theta.argmax(1)
    z_values, z_index = torch.unique(source, return_inverse=True)
    joint = torch.zeros(classes, len(z_values), dtype=torch.float64)
    joint.index_put_((index, z_index), torch.ones(len(index), dtype=torch.float64), accumulate=True)
    joint /= len(index)
    marginal = joint.sum(0, keepdim=True)
    present = joint > 0  # 0 log 0 = 0
    return float((joint[present] * torch.log((joint / marginal)[present])).sum())
