"""Keep a backbone's layer groups a partition of its parameters when adapters rename or add parameters.

peft's LoRA wraps ``x`` so that ``x.weight`` becomes ``x.base_layer.weight`` and adds ``x.lora_A.<adapter>.weight``
and ``x.lora_B.<adapter>.weight``; merging undoes both. Freezing, layer-wise learning rates and the plan all
read ``layer_groups()``, so the groups must follow: a base parameter stays in its group under its new name
and an adapter's parameters join the group of the module they adapt.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from transferlab.adapters.markers import ADAPTER_MARKERS
from transferlab.backbones.base import LayerGroup

#: The infix peft puts between a wrapped module and its original parameters.
BASE_LAYER = ".base_layer"


def _canonical(name: str) -> str:
    """The parameter's name in the plain architecture (``x.base_layer.weight`` → ``x.weight``)."""
    return name.replace(BASE_LAYER + ".", ".")


def _adapted_module(name: str) -> str | None:
    """For an adapter parameter, the plain name of the module it adapts (``x.lora_A.default.weight`` → ``x``)."""
    for marker in ADAPTER_MARKERS:
        head, sep, _ = name.partition("." + marker)
        if sep:
            return _canonical(head + ".").rstrip(".")
    return None


def regroup(groups: Sequence[LayerGroup], param_names: Sequence[str]) -> list[LayerGroup]:
    """Map layer groups onto a renamed parameter set (after injecting or merging adapters).

    Args:
        groups: The current groups (before the change), stem → top.
        param_names: Parameter names after the change, in ``named_parameters()`` order.

    Returns:
        Groups with the same names and order, holding every new parameter exactly once.

    Raises:
        ValueError: If a parameter maps to no group (an adapter on a module outside every group).
    """
    group_of: dict[str, int] = {}
    for index, group in enumerate(groups):
        for name in group.param_names:
            if _adapted_module(name) is None:
                group_of[_canonical(name)] = index
    module_group: dict[str, int] = {}
    for name, index in group_of.items():
        module_group.setdefault(name.rpartition(".")[0], index)
    members: list[list[str]] = [[] for _ in groups]
    for name in param_names:
        module = _adapted_module(name)
        index = group_of.get(_canonical(name)) if module is None else module_group.get(module)
        if index is None:
            raise ValueError(f"parameter {name!r} belongs to no layer group (groups: {[g.name for g in groups]})")
        members[index].append(name)
    return [LayerGroup(g.name, tuple(m)) for g, m in zip(groups, members, strict=True)]


def set_layer_groups(backbone: nn.Module, groups: list[LayerGroup]) -> None:
    """Make ``backbone.layer_groups()`` return ``groups``.

    ``ModelBackbone`` keeps its groups in ``_groups``; a backbone that computes its groups from its current
    parameter names (as some test doubles do) needs nothing.

    Raises:
        TypeError: If the backbone stores its groups elsewhere and they no longer match its parameters.
    """
    if hasattr(backbone, "_groups"):
        backbone._groups = list(groups)
        return
    current = {n for g in backbone.layer_groups() for n in g.param_names}  # type: ignore[operator]
    if current != {n for n, _ in backbone.named_parameters()}:
        raise TypeError(
            f"{type(backbone).__name__}: cannot update its layer groups after adding adapters; "
            "store them in `_groups` (as ModelBackbone does) or compute them from named_parameters()."
        )
