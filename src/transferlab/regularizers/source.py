"""The source model of a run: which backbone weights are a real starting point, and the source task's head.

Both regularizers pull the model towards where it started. That only means something for weights that were
loaded (not randomly initialised), and LwF additionally needs the classifier the backbone was trained with,
which the backbone itself no longer holds (every family strips its head). Files are read only through the
safe readers of :mod:`transferlab.backbones`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from transferlab.adapters.markers import is_adapter_param
from transferlab.backbones.packaged import PACKAGED, load_packaged_state_dict, packaged_name_for_arch
from transferlab.backbones.weight_files import read_weights_file

#: ``weights`` values that mean random initialisation (as in the backbone registry).
RANDOM_WEIGHTS = frozenset({"none", "null", "random", ""})
#: Key prefixes of a classifier in a weights file, most specific first: transferlab exports and checkpoints
#: (``head``), timm (``classifier``, ``head``), torchvision (``fc``), lukemelas EfficientNet (``_fc``).
HEAD_PREFIXES = ("head", "classifier", "fc", "_fc")


@dataclass(frozen=True)
class SourceHead:
    """The source task's linear classifier.

    Attributes:
        weight: ``(num_source_classes, num_features)``.
        bias: ``(num_source_classes,)``.
        origin: Where it came from, for the log.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    origin: str

    def as_linear(self) -> nn.Linear:
        """A frozen ``nn.Linear`` holding the head (its tensors are copies)."""
        out_features, in_features = self.weight.shape
        linear = nn.Linear(in_features, out_features)
        with torch.no_grad():
            linear.weight.copy_(self.weight)
            linear.bias.copy_(self.bias)
        return linear.requires_grad_(False)


def is_random_weights(weights: Any) -> bool:
    """Whether a ``backbone.weights`` value means random initialisation."""
    return weights is None or (isinstance(weights, str) and weights.strip().lower() in RANDOM_WEIGHTS)


@dataclass(frozen=True)
class StartingPoint:
    """Where the run's backbone weights came from (what the assembly did before any training).

    Attributes:
        name: ``backbone.name``.
        weights: ``backbone.weights`` as configured.
        init: ``strategy.init`` (``pretrained`` or ``random``).
        reinitialised: Backbone parameter names re-initialised by ``strategy.shared_groups``.
    """

    name: str
    weights: Any
    init: str = "pretrained"
    reinitialised: frozenset[str] = frozenset()

    @property
    def pretrained(self) -> bool:
        """Whether the backbone holds loaded weights (not ``weights: null`` and not ``strategy.init=random``)."""
        return not is_random_weights(self.weights) and self.init != "random"


def new_backbone_params(backbone: nn.Module, start: StartingPoint) -> frozenset[str]:
    """Backbone parameters without a meaningful starting point: they were never loaded from the source.

    These are every parameter of a randomly initialised backbone, the groups above ``strategy.shared_groups``
    (re-initialised by the assembly) and adapter parameters.

    Args:
        backbone: The backbone before training.
        start: Where its weights came from.

    Returns:
        Parameter names relative to the backbone.
    """
    names = [n for n, _ in backbone.named_parameters()]
    if not start.pretrained:
        return frozenset(names)
    return frozenset({n for n in names if is_adapter_param(n)} | set(start.reinitialised))


def _packaged_name(name: str) -> str | None:
    if name in PACKAGED:
        return name
    return packaged_name_for_arch(name.removeprefix("timm:")) if name.startswith("timm:") else None


def _head_in(tensors: Mapping[str, torch.Tensor], num_features: int) -> tuple[str, torch.Tensor, torch.Tensor] | None:
    for prefix in HEAD_PREFIXES:
        weight, bias = tensors.get(f"{prefix}.weight"), tensors.get(f"{prefix}.bias")
        # The shape check is what makes a guessed key safe: the head must read exactly these features.
        if (
            weight is not None
            and bias is not None
            and weight.ndim == 2
            and weight.shape[1] == num_features
            and tuple(bias.shape) == (weight.shape[0],)
        ):
            return prefix, weight, bias
    return None


def find_source_head(start: StartingPoint, num_features: int) -> tuple[SourceHead | None, str]:
    """Find the classifier of the source model, if the weights carry one that fits the features.

    Args:
        start: Where the backbone's weights came from.
        num_features: Width of the backbone's pooled features (the head's input).

    Returns:
        ``(head, "")``, or ``(None, reason)`` when there is no usable source head.

    Raises:
        WeightsError: If the weights file or package cannot be read (the backbone was just built from it,
            so this means it changed in between).
    """
    name, weights = start.name, start.weights
    if not start.pretrained:
        return None, "the backbone starts from random weights"
    if start.reinitialised:
        return None, "strategy.shared_groups re-initialised part of the backbone, so the source head no longer fits"
    if weights == "hub":
        return None, "hub weights are built without their classifier"
    if weights == "package":
        package = _packaged_name(name)
        if package is None:
            return None, f"backbone {name} has no packaged weights"
        state = load_packaged_state_dict(package)
        found = _head_in({k: v for k, v in state.items() if k.startswith("classifier.")}, num_features)
        origin = f"packaged ImageNet classifier of {package}"
    else:
        file = read_weights_file(weights)  # type: ignore[arg-type]
        found = _head_in(file.tensors, num_features)
        origin = str(file.path)
    if found is None:
        return None, f"{origin} holds no classifier that reads {num_features} features"
    prefix, weight, bias = found
    head = SourceHead(weight.detach().float().clone(), bias.detach().float().clone(), f"{origin} ({prefix}.*)")
    return head, ""
