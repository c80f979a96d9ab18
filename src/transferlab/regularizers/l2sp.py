"""L2-SP (Li, Grandvalet & Davoine, 2018): weight decay towards the starting point instead of towards zero."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from transferlab.regularizers.registry import Key, register
from transferlab.regularizers.source import StartingPoint, new_backbone_params

log = logging.getLogger(__name__)


def _buffer_name(param_name: str) -> str:
    # Buffer names may not contain dots; a readable escape keeps checkpoints inspectable.
    return "w0__" + param_name.replace(".", "__")


class L2SP(nn.Module):
    """``alpha/2 · Σ‖w − w0‖²`` over loaded backbone weights plus ``beta/2 · Σ‖w‖²`` over new weights.

    ``w0`` is copied when the regularizer is built, i.e. the weights the run starts from. New weights (the
    head, re-initialised groups, adapters, a randomly initialised backbone) have no meaningful starting point
    and get plain L2 instead, as in the paper. Parameters that do not require grad are skipped: their term is
    a constant that only costs time.

    Args:
        backbone: The backbone with its starting weights.
        alpha: Strength of the pull towards ``w0`` (≥ 0).
        beta: Strength of plain L2 on new parameters (≥ 0).
        new_params: Backbone parameter names without a starting point.

    Example:
        >>> penalty = L2SP(backbone, alpha=0.01, beta=0.01, new_params=frozenset())  # doctest: +SKIP
    """

    def __init__(self, backbone: nn.Module, alpha: float, beta: float, new_params: Iterable[str] = ()) -> None:
        super().__init__()
        self.alpha, self.beta = float(alpha), float(beta)
        new = frozenset(new_params)
        names = [n for n, _ in backbone.named_parameters()]
        self.anchored: list[str] = [n for n in names if n not in new] if self.alpha > 0 else []
        self.decayed: list[str] = [n for n in names if n in new] if self.beta > 0 else []
        params = dict(backbone.named_parameters())
        for name in self.anchored:
            # A buffer (not a parameter): moves with the module, never trains, not counted as trainable.
            self.register_buffer(_buffer_name(name), params[name].detach().clone())

    def forward(self, module: nn.Module, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The penalty for the module's current weights (``x`` and ``features`` are unused).

        Args:
            module: The TransferModule (``backbone``, ``head_parameters()``).
            x: The input batch.
            features: The backbone features of ``x``.

        Returns:
            A scalar; an exact zero without a graph when both strengths are 0, so that the run's numerics
            are those of plain fine-tuning.
        """
        heads = list(module.head_parameters())
        zero = heads[0].new_zeros(())
        if self.alpha == 0 and self.beta == 0:
            return zero
        params = dict(module.backbone.named_parameters())
        penalty = zero
        if self.anchored:
            terms = [
                (params[n] - getattr(self, _buffer_name(n))).pow(2).sum()
                for n in self.anchored
                if params[n].requires_grad
            ]
            if terms:
                penalty = penalty + 0.5 * self.alpha * torch.stack(terms).sum()
        if self.beta > 0:
            new = [params[n] for n in self.decayed] + heads
            terms = [p.pow(2).sum() for p in new if p.requires_grad]
            if terms:
                penalty = penalty + 0.5 * self.beta * torch.stack(terms).sum()
        return penalty

    def extra_repr(self) -> str:
        """Strengths and how many tensors each term covers."""
        return f"alpha={self.alpha}, beta={self.beta}, anchored={len(self.anchored)}, decayed={len(self.decayed)}+head"


@register("l2sp", {"alpha": Key(0.01), "beta": Key(0.01)})
def build_l2sp(backbone: nn.Module, start: StartingPoint, values: Mapping[str, float]) -> nn.Module:
    """``regularizer=l2sp``: anchor the loaded weights, plain L2 on the rest (the head included)."""
    new = new_backbone_params(backbone, start)
    if new:
        log.info("L2-SP: %d backbone tensors have no starting point (new or random init); they get beta·L2", len(new))
    return L2SP(backbone, values["alpha"], values["beta"], new)
