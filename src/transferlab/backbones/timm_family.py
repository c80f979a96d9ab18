"""timm models as backbones (``timm:<name>``): timm's own pooling, group matcher and pretrained config."""

from __future__ import annotations

import re
from typing import Any

import timm
from timm.data import resolve_data_config
from timm.models import group_parameters
from torch import nn

from transferlab.backbones.base import DataConfig
from transferlab.backbones.module import ModelBackbone, group_names

PREFIX = "timm:"


def timm_names() -> list[str]:
    """Registry names (``timm:<name>``) of every architecture timm knows."""
    return [PREFIX + n for n in timm.list_models()]


def is_timm_arch(arch: str) -> bool:
    """Whether timm can build ``arch`` (a pretrained tag such as ``resnet18.a1_in1k`` is allowed)."""
    return bool(arch) and timm.is_model(arch)


def build_headless(arch: str, pretrained: bool) -> nn.Module:
    """``timm.create_model`` without classifier and without feature dropout.

    timm applies ``drop_rate`` dropout inside ``forward_head`` even with ``num_classes=0``; dropout belongs
    to the task head (``strategy.head_dropout``), so features are built deterministic.

    Args:
        arch: timm model name (with optional pretrained tag).
        pretrained: Download timm's pretrained weights (needs network; errors propagate).

    Returns:
        The model; ``model(x)`` returns pooled features.
    """
    try:
        return timm.create_model(arch, pretrained=pretrained, num_classes=0, drop_rate=0.0)
    except TypeError:
        # A few architectures take no drop_rate argument; they have no head dropout to switch off.
        return timm.create_model(arch, pretrained=pretrained, num_classes=0)


def timm_groups(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Layer groups from timm's own ``group_matcher(coarse=True)`` (one group per stage / block).

    The last group is named ``top`` when it holds only layers unlike the stage layers (e.g. convnext's
    ``head.norm``, mobilenetv3's ``conv_head``); when it also holds the last stage (efficientnet's
    ``blocks.6`` + ``conv_head``, vit's ``blocks.11`` + ``norm``) it stays ``groupK``.

    Args:
        model: A timm model.

    Returns:
        ``(name, parameter names)`` pairs, stem → top.
    """
    matcher = model.group_matcher(coarse=True) if hasattr(model, "group_matcher") else None
    if matcher is None:  # no matcher: one group is still a valid (if coarse) partition
        return [("stem", [n for n, _ in model.named_parameters()])]
    grouped = group_parameters(model, matcher)
    cuts = [grouped[k] for k in sorted(grouped)]
    # Compare names with indices blanked: "layer4.0.conv1.weight" looks like "layer3.0.conv1.weight".
    shapes = [{re.sub(r"\d+", "#", n) for n in cut} for cut in cuts]
    stage_shapes = set().union(*shapes[1:-1]) if len(cuts) > 2 else set()
    has_top = len(cuts) > 2 and not (shapes[-1] & stage_shapes)
    return list(zip(group_names(len(cuts), has_top), cuts, strict=True))


def timm_data_config(model: nn.Module) -> DataConfig:
    """Preprocessing from the model's ``pretrained_cfg`` (set even for random init)."""
    cfg: dict[str, Any] = resolve_data_config({}, model=model)
    in_chans, _, width = cfg["input_size"]
    return DataConfig(
        input_size=int(width),
        mean=tuple(float(v) for v in cfg["mean"]),  # type: ignore[arg-type]
        std=tuple(float(v) for v in cfg["std"]),  # type: ignore[arg-type]
        interpolation=str(cfg["interpolation"]),
        crop_pct=float(cfg["crop_pct"]),
        in_chans=int(in_chans),
    )


def feature_width(model: nn.Module) -> int:
    """Width of ``model(x)`` with ``num_classes=0``: ``head_hidden_size`` when a pre-logits layer exists."""
    return int(getattr(model, "head_hidden_size", None) or model.num_features)


def create_timm(name: str, arch: str, pretrained: bool, data_config: DataConfig | None = None) -> ModelBackbone:
    """Build a timm model as a backbone.

    Args:
        name: Registry name stored on the backbone (``timm:resnet18``, ``efficientnet_lite0``).
        arch: timm model name.
        pretrained: Download timm's pretrained weights.
        data_config: Preprocessing to use instead of timm's ``pretrained_cfg`` (for weights from elsewhere).

    Returns:
        The backbone.
    """
    model = build_headless(arch, pretrained)
    return ModelBackbone(name, model, feature_width(model), data_config or timm_data_config(model), timm_groups(model))
