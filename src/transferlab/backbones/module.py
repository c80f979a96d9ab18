"""ModelBackbone: one ``nn.Module`` that turns any headless torchvision or timm model into a Backbone."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from transferlab.backbones.base import DataConfig, LayerGroup

#: Parameter-name prefix of the wrapped model inside :class:`ModelBackbone` (``model.conv1.weight``).
MODEL_PREFIX = "model."


class ModelBackbone(nn.Module):
    """A headless image model whose ``forward`` already returns pooled ``(B, D)`` features.

    Every family (torchvision, timm, the packaged EfficientNet-Lite) removes its classifier first, so one
    class implements the contract for all of them: the families differ only in how the head is removed,
    how the layer groups are cut, and where the preprocessing comes from.

    Args:
        name: Registry name that rebuilds the architecture (stored with exported models).
        model: The headless model; ``model(x)`` must return ``(B, num_features)``.
        num_features: Width of the pooled features.
        data_config: Preprocessing of the weights.
        groups: Layer groups of ``model``, stem → top, with parameter names relative to ``model``.

    Raises:
        ValueError: If the groups miss, repeat or invent a parameter (a bug in a family definition).

    Example:
        >>> backbone = create_backbone("tv:resnet18")  # doctest: +SKIP
        >>> backbone.forward_features(torch.zeros(2, 3, 64, 64)).shape  # doctest: +SKIP
        torch.Size([2, 512])
    """

    def __init__(
        self,
        name: str,
        model: nn.Module,
        num_features: int,
        data_config: DataConfig,
        groups: Sequence[tuple[str, Sequence[str]]],
    ) -> None:
        super().__init__()
        self.name = name
        self.model = model
        self.num_features = int(num_features)
        self.data_config = data_config
        self._groups = [
            LayerGroup(group, tuple(MODEL_PREFIX + p for p in params)) for group, params in groups if params
        ]
        _check_partition(name, self._groups, [n for n, _ in self.named_parameters()])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return pooled features of shape ``(B, num_features)``."""
        return self.model(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward_features`: a backbone's output is its pooled features."""
        return self.forward_features(x)

    def layer_groups(self) -> list[LayerGroup]:
        """Return the parameter groups, ordered stem → top."""
        return list(self._groups)

    def extra_repr(self) -> str:
        """Name, width and group names in ``print(backbone)``."""
        return f"name={self.name!r}, num_features={self.num_features}, groups={[g.name for g in self._groups]}"


def _check_partition(name: str, groups: Sequence[LayerGroup], param_names: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for group in groups:
        for p in group.param_names:
            if p in seen:
                raise ValueError(f"backbone {name}: parameter {p} is in groups {seen[p]} and {group.name}")
            seen[p] = group.name
    unknown = set(seen) - set(param_names)
    missing = [p for p in param_names if p not in seen]
    if unknown or missing:
        raise ValueError(
            f"backbone {name}: layer groups do not partition the parameters; "
            f"ungrouped: {missing[:5]}, not parameters: {sorted(unknown)[:5]}"
        )
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise ValueError(f"backbone {name}: duplicate layer group names {names}")


def params_under(model: nn.Module, prefixes: Sequence[str]) -> list[str]:
    """Names of ``model``'s parameters that live under any of the given module paths.

    Args:
        model: The model.
        prefixes: Module paths such as ``layer1`` or ``features.0``, or parameter names such as
            ``class_token``.

    Returns:
        Parameter names in ``named_parameters()`` order.
    """
    return [n for n, _ in model.named_parameters() if any(n == p or n.startswith(p + ".") for p in prefixes)]


def group_names(count: int, has_top: bool) -> list[str]:
    """The house style of group names: ``stem``, ``group1`` … ``groupK`` and, if there is one, ``top``.

    Strategies refer to groups by these names (``trainable: [group4, top]``), so every family uses them.

    Args:
        count: Total number of groups (stem and top included).
        has_top: Whether the last group holds only post-stage layers (final norm / 1x1 conv head).

    Returns:
        ``count`` names.
    """
    middle = count - 1 - int(has_top)
    return ["stem"] + [f"group{i}" for i in range(1, middle + 1)] + (["top"] if has_top else [])
