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

from transferlab.backbones import load_packaged_state_dict, read_weights_file
from transferlab.backbones.packaged import PACKAGED, packaged_name_for_arch

#: ``weights`` values that mean random initialisation (as in the backbone registry).
RANDOM_WEIGHTS = frozenset({"none", "null", "random", ""})
#: Key prefixes of a classifier in a weights file, most specific first: transferlab exports and checkpoints
#: (``head``), timm (``classifier``, ``head``), torchvision (``fc``), lukemelas EfficientNet (``_fc``).
HEAD_PREFIXES = ("head", "classifier", "fc", "_fc")
#: Substrings of adapter parameter names (peft LoRA): new parameters, not part of the source model.
ADAPTER_MARKERS = ("lora_",)


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


def _strategy_of(module: nn.Module) -> Mapping[str, Any]:
    # The engine stores the resolved config (already validated by parse_strategy) in the module's hparams;
    # reading the two strategy keys here keeps the engine's build_regularizer call unchanged.
    hparams = getattr(module, "hparams", {}) or {}
    config = hparams.get("config") or {}
    return config.get("strategy") or {}


def starts_pretrained(module: nn.Module, backbone_cfg: Mapping[str, Any]) -> bool:
    """Whether the backbone holds loaded weights (not ``weights: null`` and not ``strategy.init=random``)."""
    return not is_random_weights(backbone_cfg.get("weights")) and _strategy_of(module).get("init") != "random"


def new_backbone_params(module: nn.Module, backbone_cfg: Mapping[str, Any]) -> frozenset[str]:
    """Backbone parameters without a meaningful starting point: they were never loaded from the source.

    These are every parameter of a randomly initialised backbone, the groups above ``strategy.shared_groups``
    (re-initialised by the engine) and adapter parameters.

    Args:
        module: The TransferModule before training (``backbone``, ``groups``, ``hparams``).
        backbone_cfg: Plain mapping of the ``backbone`` group.

    Returns:
        Parameter names relative to ``module.backbone``.
    """
    names = [n for n, _ in module.backbone.named_parameters()]
    if not starts_pretrained(module, backbone_cfg):
        return frozenset(names)
    new = {n for n in names if any(marker in n for marker in ADAPTER_MARKERS)}
    shared = _strategy_of(module).get("shared_groups")
    groups = getattr(module, "groups", None)
    if shared is not None and groups is not None:
        new.update(name for group in groups.groups[int(shared) :] for name in group.param_names)
    return frozenset(new)


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


def find_source_head(
    module: nn.Module, backbone_cfg: Mapping[str, Any], num_features: int
) -> tuple[SourceHead | None, str]:
    """Find the classifier of the source model, if the weights carry one that fits the features.

    Args:
        module: The TransferModule before training (to see ``strategy.init`` and ``shared_groups``).
        backbone_cfg: Plain mapping of the ``backbone`` group (``name``, ``weights``).
        num_features: Width of the backbone's pooled features (the head's input).

    Returns:
        ``(head, "")``, or ``(None, reason)`` when there is no usable source head.

    Raises:
        WeightsError: If the weights file or package cannot be read (the backbone was just built from it,
            so this means it changed in between).
    """
    name, weights = str(backbone_cfg.get("name")), backbone_cfg.get("weights")
    if not starts_pretrained(module, backbone_cfg):
        return None, "the backbone starts from random weights"
    if _strategy_of(module).get("shared_groups") is not None:
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
