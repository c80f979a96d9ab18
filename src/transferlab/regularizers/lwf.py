"""Learning without Forgetting (Li & Hoiem, 2016) for transfer: keep the source task's outputs on new inputs."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.regularizers.registry import Key, register
from transferlab.regularizers.source import StartingPoint, find_source_head

log = logging.getLogger(__name__)


class LwF(nn.Module):
    """Distil a frozen copy of the starting model into the model being fine-tuned.

    With the source head: ``weight · T² · KL(softmax(old/T) ‖ softmax(new/T))``, where ``old`` is the
    frozen copy's source-task logits and ``new`` the source head applied to the current features. The ``T²``
    keeps gradient magnitudes comparable across temperatures (Hinton et al., 2015). Without a source head
    (random init, hub weights, a file without classifier) it falls back to feature distillation:
    ``weight · mean((features − old_features)²)``.

    The copy always runs in eval mode under ``no_grad``: its BatchNorm statistics never move, and it holds
    only frozen tensors, so trainable-parameter counts are those of the run without a regularizer.

    Args:
        backbone: The backbone with its starting weights (copied).
        weight: Strength ``lambda`` (≥ 0).
        temperature: Softening temperature ``T`` (> 0).
        source_head: The source task's classifier, or ``None`` for feature distillation.

    Example:
        >>> penalty = LwF(backbone, weight=1.0, temperature=2.0, source_head=head)  # doctest: +SKIP
    """

    def __init__(
        self, backbone: nn.Module, weight: float, temperature: float, source_head: nn.Linear | None = None
    ) -> None:
        super().__init__()
        self.weight, self.temperature = float(weight), float(temperature)
        self.old_backbone = copy.deepcopy(backbone).requires_grad_(False).eval()
        self.old_head = None if source_head is None else source_head.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> LwF:
        """Keep the frozen copy in eval mode whatever the parent module's mode (``TransferModule.train``)."""
        super().train(mode)
        self.old_backbone.eval()
        if self.old_head is not None:
            self.old_head.eval()
        return self

    def forward(self, module: nn.Module, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The distillation penalty of the current ``features`` of ``x``.

        Args:
            module: The TransferModule (unused: the current model enters through ``features``).
            x: The input batch (fed to the frozen copy).
            features: The current backbone's features of ``x`` (gradients flow through them).

        Returns:
            A scalar.
        """
        if self.weight == 0:
            return features.new_zeros((), dtype=torch.float32)
        with torch.no_grad():
            old_features = self.old_backbone.forward_features(x)
            old_logits = None if self.old_head is None else self.old_head(old_features)
        if old_logits is None or self.old_head is None:
            return self.weight * (features.float() - old_features.float()).pow(2).mean()
        t = self.temperature
        new_logp = F.log_softmax(self.old_head(features).float() / t, dim=-1)
        old_logp = F.log_softmax(old_logits.float() / t, dim=-1)
        # batchmean is the true KL per sample; log_target avoids log(0) for confidently wrong classes.
        kl = F.kl_div(new_logp, old_logp, reduction="batchmean", log_target=True)
        return self.weight * t * t * kl

    @property
    def mode(self) -> str:
        """``logits`` (with a source head) or ``features`` (the fallback)."""
        return "features" if self.old_head is None else "logits"

    def extra_repr(self) -> str:
        """Strength, temperature and mode."""
        return f"weight={self.weight}, temperature={self.temperature}, mode={self.mode!r}"


@register("lwf", {"weight": Key(1.0), "temperature": Key(2.0, exclusive=True)})
def build_lwf(backbone: nn.Module, start: StartingPoint, values: Mapping[str, float]) -> nn.Module:
    """``regularizer=lwf``: distil the source head's logits, or the features where there is no source head."""
    head, reason = find_source_head(start, int(backbone.num_features))  # type: ignore[arg-type]
    if head is None:
        log.info("LwF: no source head (%s); distilling backbone features instead of source-task logits", reason)
        return LwF(backbone, values["weight"], values["temperature"], None)
    log.info("LwF: source head = %s, %d classes", head.origin, head.weight.shape[0])
    return LwF(backbone, values["weight"], values["temperature"], head.as_linear())
