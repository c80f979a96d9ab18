"""The Backbone contract, checked over the whole registry.

Every shipped config choice (conf/backbone/*.yaml) and two timm models run a real forward pass on CPU with
random weights. Every other registered name is built on the ``meta`` device: shapes, layer groups and the
data config are checked without allocating or computing anything, so the large models cost milliseconds.
"""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from transferlab.backbones import Backbone, DataConfig, create_backbone, list_backbones, module_group_index
from transferlab.config.paths import conf_dir
from transferlab.errors import WeightsError

TIMM_EXTRA = ["timm:resnet18", "timm:efficientnet_b0", "timm:convnext_atto", "timm:vit_tiny_patch16_224"]


def _shipped_names() -> list[str]:
    names = [str(OmegaConf.load(p).name) for p in sorted((conf_dir() / "backbone").glob("*.yaml"))]
    return [n for n in names if n != "checkpoint"]


REAL = sorted(set(_shipped_names()) | set(TIMM_EXTRA))
META = [n for n in list_backbones() if not n.startswith("timm:") and n != "checkpoint" and n not in REAL]


def _input_size(backbone: Backbone) -> int:
    # ViTs have a fixed patch grid; everything else pools any size, so 64 px keeps the forward cheap.
    return backbone.data_config.input_size if "vit" in backbone.name else 64


def check_layer_groups(backbone: nn.Module) -> None:
    groups = backbone.layer_groups()
    names = [g.name for g in groups]
    assert len(groups) >= 2, f"{backbone.name}: expected stem + at least one more group, got {names}"
    assert names[0] == "stem", f"{backbone.name}: groups must start with 'stem', got {names}"
    assert len(set(names)) == len(names), f"{backbone.name}: duplicate group names {names}"
    assert all(g.param_names for g in groups), f"{backbone.name}: empty group in {names}"
    expected = ["stem"] + [f"group{i}" for i in range(1, len(names))]
    assert names in (expected, [*expected[:-1], "top"]), f"{backbone.name}: names off convention: {names}"
    params = [n for n, _ in backbone.named_parameters()]
    grouped = [p for g in groups for p in g.param_names]
    assert sorted(grouped) == sorted(params), (
        f"{backbone.name}: groups must hold every parameter exactly once; "
        f"ungrouped {sorted(set(params) - set(grouped))[:3]}, extra/duplicate "
        f"{[p for p in grouped if grouped.count(p) > 1 or p not in params][:3]}"
    )
    # Ordered stem -> top: parameters appear in definition order along the groups, stem first.
    order = {p: i for i, p in enumerate(params)}
    firsts = [order[g.param_names[0]] for g in groups]
    assert firsts[0] == 0, f"{backbone.name}: the stem must hold the first parameter"
    assert firsts == sorted(firsts), f"{backbone.name}: groups not in stem -> top order: {names}"
    owners = module_group_index(backbone, groups)
    assert owners, f"{backbone.name}: no module mapped to a group"


def check_data_config(backbone: Backbone) -> None:
    dc = backbone.data_config
    assert isinstance(dc, DataConfig), f"{backbone.name}: data_config is {type(dc)}"
    assert 32 <= dc.input_size <= 1024, f"{backbone.name}: input_size {dc.input_size}"
    assert len(dc.mean) == len(dc.std) == dc.in_chans == 3, f"{backbone.name}: mean/std {dc.mean} {dc.std}"
    assert all(0 < s <= 1 for s in dc.std) and all(0 <= m <= 1 for m in dc.mean), f"{backbone.name}: {dc}"
    assert dc.interpolation in ("bilinear", "bicubic", "nearest"), f"{backbone.name}: {dc.interpolation}"
    assert 0.5 < dc.crop_pct <= 1.0, f"{backbone.name}: crop_pct {dc.crop_pct}"


@pytest.mark.parametrize("name", REAL)
def test_real_forward(name: str) -> None:
    torch.manual_seed(0)
    backbone = create_backbone(name, weights=None).eval()
    assert isinstance(backbone, Backbone), f"{name}: does not satisfy the Backbone protocol"
    assert backbone.name == name, f"registry name not kept: {backbone.name} != {name}"
    size = _input_size(backbone)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        features = backbone.forward_features(x)
        again = backbone(x)
    assert features.shape == (2, backbone.num_features), f"{name}: features {tuple(features.shape)}"
    assert torch.isfinite(features).all(), f"{name}: non-finite features"
    assert torch.equal(features, again), f"{name}: forward must equal forward_features (eval mode)"
    check_layer_groups(backbone)
    check_data_config(backbone)


@pytest.mark.parametrize("name", META)
def test_meta_contract(name: str) -> None:
    with torch.device("meta"):
        backbone = create_backbone(name, weights=None)
        size = _input_size(backbone)
        features = backbone.forward_features(torch.empty(2, 3, size, size))
    assert features.shape == (2, backbone.num_features), f"{name}: features {tuple(features.shape)}"
    check_layer_groups(backbone)
    check_data_config(backbone)


def test_every_registry_name_is_covered() -> None:
    covered = set(REAL) | set(META) | {"checkpoint"}
    listed = {n for n in list_backbones() if not n.startswith("timm:")}
    assert listed <= covered, f"registry names without a contract test: {sorted(listed - covered)}"
    assert len(META) > 10, f"expected the torchvision families to register many models, got {META}"


def test_checkpoint_name_needs_a_file() -> None:
    with pytest.raises(WeightsError, match=r"backbone=checkpoint needs backbone\.weights"):
        create_backbone("checkpoint", weights=None)


def test_frozen_features_are_deterministic_in_train_mode() -> None:
    # Dropout belongs to the task head: timm's drop_rate and torchvision's classifier dropout are removed.
    for name in ("efficientnet_lite0", "tv:mobilenet_v3_small"):
        backbone = create_backbone(name).train()
        for m in backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            a, b = backbone(x), backbone(x)
        assert torch.equal(a, b), f"{name}: features differ between two train-mode passes (dropout left on?)"
        assert not math.isnan(float(a.sum())), f"{name}: NaN features"
