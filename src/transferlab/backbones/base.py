"""The backbone contract: what every backbone exposes to strategies, data and the training module."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import nn


@dataclass(frozen=True)
class DataConfig:
    """Preprocessing that the backbone's weights expect; data modules read it instead of hard-coding stats.

    Attributes:
        input_size: Square side in pixels the weights were trained at.
        mean: Per-channel mean (RGB) of the normalisation.
        std: Per-channel standard deviation (RGB).
        interpolation: Resize interpolation (``bilinear`` or ``bicubic``).
        crop_pct: Centre-crop fraction used at evaluation time.
        in_chans: Number of input channels.
    """

    input_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    in_chans: int = 3


@dataclass(frozen=True)
class LayerGroup:
    """A named, ordered slice of a backbone's parameters (stem → top) that strategies freeze or unfreeze.

    Attributes:
        name: Short name, unique within the backbone (``stem``, ``group1``, …, ``top``).
        param_names: Names (as in ``backbone.named_parameters()``) of the parameters in this group.
    """

    name: str
    param_names: tuple[str, ...] = field(default_factory=tuple)


@runtime_checkable
class Backbone(Protocol):
    """What a backbone is: an ``nn.Module`` that maps images to pooled features.

    Contract (tested over the whole registry in ``tests/backbones/test_contract.py``):

    * ``forward_features(x)`` returns a ``(B, num_features)`` tensor.
    * ``layer_groups()`` is ordered stem → top; every parameter belongs to exactly one group.
    * ``data_config`` is the preprocessing of the loaded weights.
    * ``name`` is the registry name that rebuilds the architecture (stored with exported models).
    """

    name: str
    num_features: int
    data_config: DataConfig

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return pooled features of shape ``(B, num_features)``."""
        ...

    def layer_groups(self) -> list[LayerGroup]:
        """Return the parameter groups, ordered stem → top."""
        ...

    def named_parameters(self, *args, **kwargs):  # noqa: D102 - nn.Module's own
        ...

    def modules(self):  # noqa: D102 - nn.Module's own
        ...


def module_group_index(backbone: nn.Module, groups: list[LayerGroup]) -> dict[str, int]:
    """Map each submodule that owns parameters directly to the index of its layer group.

    Used to decide which BatchNorm layers belong to a frozen group (their running statistics must not move).
    A module whose parameters straddle groups takes the group of its first parameter.

    Args:
        backbone: The backbone module.
        groups: Its layer groups, as returned by ``layer_groups()``.

    Returns:
        Module name (as in ``named_modules()``) → group index.
    """
    param_group = {p: i for i, g in enumerate(groups) for p in g.param_names}
    owner: dict[str, int] = {}
    for mod_name, module in backbone.named_modules():
        for p_name, _ in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if full in param_group:
                owner.setdefault(mod_name, param_group[full])
    return owner
