"""Entry points the engine calls: inject the strategy's adapter, merge it before export."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torch import nn

from transferlab.adapters.groups import regroup, set_layer_groups
from transferlab.adapters.lora import inject_lora, lora_layers, merge_lora
from transferlab.adapters.markers import is_adapter_param
from transferlab.adapters.spec import WHERE, parse_adapter
from transferlab.adapters.targets import resolve_targets
from transferlab.errors import ConfigError

log = logging.getLogger(__name__)


def apply_adapter(backbone: nn.Module, spec: Mapping[str, Any] | None) -> nn.Module:
    """Inject the adapter described by ``strategy.adapter`` into ``backbone`` (``None``: unchanged).

    The backbone is changed in place and returned. Its layer groups are updated so that each LoRA parameter
    sits in the group of the module it adapts (what ``trainable: [group6, top]`` and the plan count act on).
    Outputs are unchanged until the adapter trains (LoRA's ``B`` starts at zero).

    Args:
        backbone: A backbone (``layer_groups()`` partitions its parameters), typically a ``ModelBackbone``.
        spec: Plain mapping ``{kind: lora, rank, alpha, dropout, target_modules, bias}`` or ``None``.

    Returns:
        The same backbone, adapted.

    Raises:
        ConfigError: On a bad spec, patterns that match no adaptable module, or a backbone already adapted.

    Example:
        >>> backbone = create_backbone("efficientnet_lite0", weights="package")  # doctest: +SKIP
        >>> apply_adapter(backbone, {"kind": "lora", "rank": 4, "target_modules": ["*conv_pw"]})  # doctest: +SKIP
    """
    if spec is None:
        return backbone
    lora = parse_adapter(spec)
    if lora_layers(backbone):
        raise ConfigError(
            f"{WHERE}: backbone {getattr(backbone, 'name', '?')} already holds LoRA layers. "
            "Fix: start from a merged export (backbone=checkpoint) or a plain backbone."
        )
    targets = resolve_targets(backbone, lora.target_modules, f"{WHERE}.target_modules")
    groups = backbone.layer_groups()  # type: ignore[operator]
    inject_lora(backbone, lora, targets.names)
    set_layer_groups(backbone, regroup(groups, [n for n, _ in backbone.named_parameters()]))
    added = sum(p.numel() for n, p in backbone.named_parameters() if is_adapter_param(n))
    total = sum(p.numel() for p in backbone.parameters())
    log.info(
        "LoRA rank %d (alpha %g) on %d modules: %s adapter parameters = %.2f%% of the backbone's %s",
        lora.rank,
        lora.alpha,
        len(targets.names),
        f"{added:,}",
        100.0 * added / total,
        f"{total:,}",
    )
    return backbone


def merge_adapters(module: nn.Module) -> nn.Module:
    """Fold adapter weights into the base weights so the export is a plain backbone (no-op without adapters).

    Every LoRA layer inside ``module`` is merged (``W += B @ A * alpha / rank``) and replaced by its base layer,
    so ``state_dict`` keys are exactly the plain architecture's; backbones' layer groups follow (a
    TransferModule rebuilds its group index with ``refresh_groups()``).

    Args:
        module: A TransferModule, a backbone, or any module holding LoRA layers; changed in place.

    Returns:
        The same module.
    """
    if not merge_lora(module):
        return module
    for sub in module.modules():
        if hasattr(sub, "layer_groups") and hasattr(sub, "_groups"):
            set_layer_groups(sub, regroup(sub.layer_groups(), [n for n, _ in sub.named_parameters()]))
    return module
