"""torchvision classification models as backbones (``tv:<name>``): head removal and layer groups per family.

torchvision has no group matcher, so each family states how its classifier comes off and where its
layer groups are cut. Convention (shared with the other families): ``stem``, then one group per feature
resolution or encoder layer, then ``top`` for the layers after the last stage (final norm / 1x1 conv).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torchvision
from torch import nn

from transferlab.backbones.base import DataConfig
from transferlab.backbones.module import ModelBackbone, group_names, params_under

PREFIX = "tv:"

Groups = list[tuple[str, list[str]]]


@dataclass(frozen=True)
class _Family:
    """How one torchvision family becomes a backbone.

    Attributes:
        pattern: Regex over torchvision model names of the family.
        behead: Removes the classifier in place and returns the pooled feature width.
        groups: Layer groups as ``(name, module paths)``, stem → top.
        fixed_input: The architecture is built for one input size (ViT's position embedding): a random-init
            model is built at the DEFAULT weights' size, so hub weights and checkpoints fit it.
    """

    pattern: str
    behead: Callable[[nn.Module], int]
    groups: Callable[[nn.Module], Groups]
    fixed_input: bool = False


# ---- head removal -------------------------------------------------------------------------------------
def _behead_resnet(model: nn.Module) -> int:
    width = model.fc.in_features
    model.fc = nn.Identity()
    return width


def _behead_classifier(model: nn.Module) -> int:
    # efficientnet / mobilenet_v2: classifier = Dropout + Linear. Dropout belongs to the task head
    # (strategy.head_dropout), so features stay deterministic.
    width = next(m for m in model.classifier if isinstance(m, nn.Linear)).in_features
    model.classifier = nn.Identity()
    return width


def _behead_keep_first_two(model: nn.Module) -> int:
    # mobilenet_v3: Linear + Hardswish are pretrained feature layers (960 -> 1280), keep them;
    # convnext: LayerNorm2d + Flatten is the final norm. Indices 0, 1 keep the state-dict keys of the
    # original model (classifier.0.weight), so torchvision weight files still load.
    old = model.classifier
    model.classifier = nn.Sequential(old[0], old[1])
    last_linear = [m for m in old if isinstance(m, nn.Linear)]
    first = old[0]
    return first.out_features if isinstance(first, nn.Linear) else last_linear[-1].in_features


def _behead_vit(model: nn.Module) -> int:
    model.heads = nn.Identity()
    return model.hidden_dim


# ---- layer groups -------------------------------------------------------------------------------------
def _groups_resnet(model: nn.Module) -> Groups:
    return [("stem", ["conv1", "bn1"])] + [(f"group{i}", [f"layer{i}"]) for i in range(1, 5)]


def _downsamples(block: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) and max(m.stride) > 1 for m in block.modules())


def _groups_by_resolution(model: nn.Module) -> Groups:
    """``features[0]`` is the stem; a new group starts at every block that downsamples.

    Blocks still at the stem's resolution (one tiny block in efficientnet_b0 / mobilenet_v3_large) join the
    stem, so groups line up with feature resolutions like resnet's layer1..layer4. The last feature layer
    (1x1 conv to the head width) and any kept classifier layers form ``top``.
    """
    features = model.features
    cuts: list[list[str]] = [["features.0"]]
    for i in range(1, len(features) - 1):
        if _downsamples(features[i]):
            cuts.append([])
        cuts[-1].append(f"features.{i}")
    cuts.append([f"features.{len(features) - 1}", "classifier"])
    return list(zip(group_names(len(cuts), has_top=True), cuts, strict=True))


def _groups_convnext(model: nn.Module) -> Groups:
    # features = [stem, stage1, down2, stage2, down3, stage3, down4, stage4]: a downsample goes with its stage.
    n = len(model.features)
    cuts = [["features.0"], ["features.1"]]
    cuts += [[f"features.{i}", f"features.{i + 1}"] for i in range(2, n, 2)]
    cuts.append(["classifier"])
    return list(zip(group_names(len(cuts), has_top=True), cuts, strict=True))


def _groups_vit(model: nn.Module) -> Groups:
    layers = [f"encoder.layers.{child}" for child, _ in model.encoder.layers.named_children()]
    cuts = [["conv_proj", "class_token", "encoder.pos_embedding"]] + [[layer] for layer in layers]
    cuts.append(["encoder.ln"])
    return list(zip(group_names(len(cuts), has_top=True), cuts, strict=True))


_FAMILIES = (
    _Family(r"(resnet\d+|resnext\d+_\w+|wide_resnet\d+_\d+)", _behead_resnet, _groups_resnet),
    _Family(r"(efficientnet_b\d|efficientnet_v2_[sml]|mobilenet_v2)", _behead_classifier, _groups_by_resolution),
    _Family(r"mobilenet_v3_(small|large)", _behead_keep_first_two, _groups_by_resolution),
    _Family(r"convnext_\w+", _behead_keep_first_two, _groups_convnext),
    _Family(r"vit_[bhl]_\d+", _behead_vit, _groups_vit, fixed_input=True),
)


def _family(arch: str) -> _Family | None:
    return next((f for f in _FAMILIES if re.fullmatch(f.pattern, arch)), None)


@cache
def torchvision_names() -> tuple[str, ...]:
    """Registry names (``tv:<arch>``) of every torchvision classification model with a known family."""
    archs = torchvision.models.list_models(module=torchvision.models)
    return tuple(PREFIX + a for a in archs if _family(a) is not None)


def torchvision_data_config(arch: str) -> DataConfig:
    """Preprocessing of the architecture's DEFAULT torchvision weights (read from the enum, no download).

    Random-init models use it too, so a scratch baseline sees the same inputs as its pretrained twin.
    """
    t = torchvision.models.get_model_weights(arch).DEFAULT.transforms()
    crop, resize = int(t.crop_size[0]), int(t.resize_size[0])
    return DataConfig(
        input_size=crop,
        mean=tuple(float(v) for v in t.mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in t.std),  # type: ignore[arg-type]
        interpolation=t.interpolation.value,
        crop_pct=round(crop / resize, 4),
    )


def create_torchvision(name: str, pretrained: bool) -> ModelBackbone:
    """Build ``tv:<arch>`` headless, with random or torchvision DEFAULT weights.

    Args:
        name: Registry name, ``tv:<arch>``.
        pretrained: Load the DEFAULT weights through ``torch.hub`` (needs network; errors propagate).

    Returns:
        The backbone.

    Raises:
        KeyError: If the architecture has no known family (the registry checks names first).
    """
    arch = name.removeprefix(PREFIX)
    family = _family(arch)
    if family is None:
        raise KeyError(name)
    data_config = torchvision_data_config(arch)
    if pretrained:
        model = torchvision.models.get_model(arch, weights="DEFAULT")
    else:
        # torchvision sizes ViT for its weights only when weights are given (vit_h_14: 518 px).
        extra = {"image_size": data_config.input_size} if family.fixed_input else {}
        model = torchvision.models.get_model(arch, weights=None, **extra)
    width = family.behead(model)
    groups = [(g, params_under(model, paths)) for g, paths in family.groups(model)]
    return ModelBackbone(name, model, width, data_config, groups)
