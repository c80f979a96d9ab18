"""How a multi-task run combines its per-task losses: fixed weights or learned uncertainty weighting.

``equal`` multiplies each task's loss by a fixed weight (``data.loss_weights``, 1.0 when not given), so
equal weights are the default and any other mix is one override away. ``uncertainty`` learns one
log-variance ``s_t`` per task (Kendall, Gal & Cipolla, CVPR 2018, "Multi-Task Learning Using Uncertainty
to Weigh Losses"): ``loss = Σ_t w_t · (exp(−s_t) · L_t + s_t)``. The ``+ s_t`` term stops every weight
from collapsing to zero; the fixed ``w_t`` still apply, so a weight of 0 drops a task in both schemes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from transferlab.data.multitask import WEIGHTINGS, Weighting


class LossWeighting(nn.Module):
    """Fixed per-task weights: ``loss = Σ_t w_t · L_t``.

    Args:
        weights: Task name → non-negative weight, one entry per task, in task order.

    Example:
        >>> combine = LossWeighting({"low": 1.0, "high": 0.5})
        >>> float(combine({"low": torch.tensor(2.0), "high": torch.tensor(2.0)}))
        3.0
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__()
        if not weights:
            raise ValueError("LossWeighting needs at least one task")
        bad = {t: w for t, w in weights.items() if w < 0}
        if bad:
            raise ValueError(f"loss weights must be ≥ 0, got {bad}")
        self.weights = {str(t): float(w) for t, w in weights.items()}

    @property
    def tasks(self) -> list[str]:
        """Task names, in order."""
        return list(self.weights)

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The combined loss of the tasks present in ``losses``."""
        return torch.stack([self.weights[t] * loss for t, loss in losses.items()]).sum()

    def effective_weights(self) -> dict[str, float]:
        """Task → the factor its loss is multiplied by right now (what TensorBoard shows)."""
        return dict(self.weights)


class UncertaintyWeighting(LossWeighting):
    """Homoscedastic-uncertainty weighting: ``loss = Σ_t w_t · (exp(−s_t) · L_t + s_t)`` with learned ``s_t``.

    ``s_t = log σ_t²`` starts at 0 (weight 1). Learning the log-variance rather than ``σ`` keeps the
    weight positive and the optimisation stable (the paper's own parametrisation).

    Args:
        weights: Task name → fixed non-negative multiplier (1.0 for plain uncertainty weighting).
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__(weights)
        self.log_vars = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in self.weights})

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The combined loss; gradients reach the task losses and the log-variances."""
        terms = [
            self.weights[t] * (torch.exp(-self.log_vars[t]) * loss + self.log_vars[t]) for t, loss in losses.items()
        ]
        return torch.stack(terms).sum()

    def effective_weights(self) -> dict[str, float]:
        """Task → ``w_t · exp(−s_t)``, the learned factor of its loss."""
        return {t: w * float(torch.exp(-self.log_vars[t].detach())) for t, w in self.weights.items()}


def build_loss_weighting(kind: Weighting, weights: Mapping[str, float]) -> LossWeighting:
    """The weighting module for ``kind`` (values already checked by the data config).

    Args:
        kind: ``equal`` (fixed weights) or ``uncertainty`` (learned log-variances).
        weights: Task name → fixed weight, one per task.

    Returns:
        A module mapping ``{task: loss}`` to the total loss; its parameters (if any) are trainable.
    """
    if kind == "uncertainty":
        return UncertaintyWeighting(weights)
    if kind == "equal":
        return LossWeighting(weights)
    raise ValueError(f"unknown loss weighting {kind!r}; valid: {', '.join(WEIGHTINGS)}")
