"""LoRA injection and merging on real backbones: identity at init, layer groups, exact merge, config errors."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from transferlab.adapters import apply_adapter, merge_adapters
from transferlab.backbones import create_backbone
from transferlab.errors import ConfigError
from transferlab.model.freeze import GroupIndex, is_adapter_param

LITE0_TARGETS = ["*conv_pw", "*conv_pwl", "*conv_head"]
RESNET_TARGETS = ["*layer[34].*.conv*"]


def _lite0() -> nn.Module:
    return create_backbone("efficientnet_lite0", weights="package").eval()


def _resnet18() -> nn.Module:
    torch.manual_seed(0)
    return create_backbone("tv:resnet18", weights=None).eval()


def _spec(targets: list[str], **extra: object) -> dict:
    return {"kind": "lora", "rank": 4, "alpha": 8, "target_modules": targets, **extra}


def _randomise_lora(backbone: nn.Module) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in backbone.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.02)


def _lora_modules(backbone: nn.Module) -> list[str]:
    return sorted({n.partition(".lora_")[0] for n, _ in backbone.named_parameters() if is_adapter_param(n)})


@pytest.mark.parametrize(
    ("make", "targets", "count"),
    [(_lite0, LITE0_TARGETS, 16 + 15 + 1), (_resnet18, RESNET_TARGETS, 8)],
    ids=["efficientnet_lite0", "tv:resnet18"],
)
def test_lora_at_init_leaves_outputs_identical_and_groups_a_partition(make, targets, count):
    backbone = make()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = backbone(x)
    plain_groups = {p: g.name for g in backbone.layer_groups() for p in g.param_names}
    apply_adapter(backbone, _spec(targets))
    backbone.eval()
    with torch.no_grad():
        after = backbone(x)
    assert torch.equal(before, after), f"LoRA B starts at zero: max diff {(before - after).abs().max()}"
    assert len(_lora_modules(backbone)) == count, f"adapted {_lora_modules(backbone)}, expected {count} modules"
    index = GroupIndex(backbone)  # raises unless the groups partition the adapted parameters
    group_of = {p: g.name for g in index.groups for p in g.param_names}
    for name in group_of:
        module, sep, _ = name.partition(".lora_")
        plain = f"{module}.weight" if sep else name.replace(".base_layer.", ".")
        assert group_of[name] == plain_groups[plain], f"{name} in {group_of[name]}, its module in {plain_groups[plain]}"
    adapter = sum(i.num_adapter_params for i in index.infos())
    counted = sum(p.numel() for n, p in backbone.named_parameters() if "lora_" in n)
    assert adapter == counted > 0, f"groups count {adapter} adapter elements, the backbone holds {counted}"


def test_lora_keeps_requires_grad_of_base_weights_and_adapters_start_trainable():
    backbone = _resnet18()
    backbone.model.layer4[0].conv1.weight.requires_grad_(False)
    apply_adapter(backbone, _spec(RESNET_TARGETS))
    named = dict(backbone.named_parameters())
    assert not named["model.layer4.0.conv1.base_layer.weight"].requires_grad, "a frozen base weight stays frozen"
    assert named["model.layer4.0.conv2.base_layer.weight"].requires_grad, "peft must not freeze base weights"
    assert all(p.requires_grad for n, p in named.items() if "lora_" in n), "adapter tensors start trainable"


def test_merge_reproduces_the_adapted_outputs_with_the_plain_architecture():
    backbone = _resnet18()
    plain_keys = list(backbone.state_dict())
    plain_groups = backbone.layer_groups()
    apply_adapter(backbone, _spec(RESNET_TARGETS))
    _randomise_lora(backbone)
    backbone.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        unmerged = backbone(x)
        base_only = create_backbone("tv:resnet18", weights=None).eval()
        base_only.load_state_dict(
            {k.replace(".base_layer.", "."): v for k, v in backbone.state_dict().items() if "lora_" not in k}
        )
        assert not torch.allclose(unmerged, base_only(x), atol=1e-3), "the randomised adapter changes outputs"
        merge_adapters(backbone)
        merged = backbone(x)
    assert torch.allclose(merged, unmerged, rtol=0, atol=1e-5), f"max diff {(merged - unmerged).abs().max()}"
    assert list(backbone.state_dict()) == plain_keys, "merged state_dict keys are the plain architecture's"
    assert backbone.layer_groups() == plain_groups, "merging restores the original layer groups"
    GroupIndex(backbone)  # still a partition


def test_merge_is_a_no_op_without_adapters():
    backbone = _resnet18()
    state = {k: v.clone() for k, v in backbone.state_dict().items()}
    assert merge_adapters(backbone) is backbone, "returns the module it was given"
    assert all(torch.equal(v, state[k]) for k, v in backbone.state_dict().items()), "nothing changed"


def test_depthwise_convs_are_skipped_with_a_note_and_alone_are_an_error(caplog):
    backbone = _lite0()
    with caplog.at_level(logging.INFO, logger="transferlab.adapters"):
        apply_adapter(backbone, _spec(["*conv_dw", "*conv_head"]))
    assert _lora_modules(backbone) == ["model.conv_head"], f"only conv_head is adaptable: {_lora_modules(backbone)}"
    assert "grouped conv" in caplog.text, f"the skip is logged: {caplog.text}"
    with pytest.raises(ConfigError, match=r"strategy\.adapter\.target_modules.*cannot wrap.*grouped conv"):
        apply_adapter(_lite0(), _spec(["*conv_dw"]))


def test_regex_patterns_select_exact_modules():
    backbone = _resnet18()
    apply_adapter(backbone, _spec([r"model\.layer4\.\d\.conv1"]))
    assert _lora_modules(backbone) == ["model.layer4.0.conv1", "model.layer4.1.conv1"], _lora_modules(backbone)


def test_log_line_reports_adapted_modules_count_and_percent(caplog):
    backbone = _resnet18()
    with caplog.at_level(logging.INFO, logger="transferlab.adapters"):
        apply_adapter(backbone, _spec(RESNET_TARGETS))
    added = sum(p.numel() for n, p in backbone.named_parameters() if "lora_" in n)
    pct = 100.0 * added / sum(p.numel() for p in backbone.parameters())
    assert f"on 8 modules: {added:,} adapter parameters = {pct:.2f}%" in caplog.text, caplog.text


def test_adapting_twice_is_an_error():
    backbone = _resnet18()
    apply_adapter(backbone, _spec(RESNET_TARGETS))
    with pytest.raises(ConfigError, match="already holds LoRA"):
        apply_adapter(backbone, _spec(RESNET_TARGETS))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"rank": 0}, r"strategy\.adapter\.rank=0: must be ≥ 1"),
        ({"rank": 1.5}, r"strategy\.adapter\.rank=1\.5: expected an integer"),
        ({"rank": "eight"}, r"strategy\.adapter\.rank='eight'"),
        ({"kind": "ia3"}, r"strategy\.adapter\.kind='ia3': unknown adapter kind; choose one of lora"),
        ({"rnak": 4}, r"strategy\.adapter\.rnak: unknown key; did you mean 'rank'"),
        ({"alpha": 0}, r"strategy\.adapter\.alpha=0\.0: must be > 0"),
        ({"dropout": 1.0}, r"strategy\.adapter\.dropout=1\.0: must be in \[0, 1\)"),
        ({"bias": "all"}, r"strategy\.adapter\.bias='all'.*strategy=bitfit"),
        ({"target_modules": None}, r"strategy\.adapter\.target_modules is missing"),
        ({"target_modules": []}, r"strategy\.adapter\.target_modules=\[\]: expected a non-empty list"),
        (
            {"target_modules": ["*attention*"]},
            r"strategy\.adapter\.target_modules=\['\*attention\*'\]: they match "
            r"no Conv2d/Linear module\. Modules LoRA can adapt here include: model\.conv1",
        ),
    ],
    ids=lambda v: str(v)[:30],
)
def test_bad_adapter_settings_raise_config_errors_naming_the_key(change, match):
    with pytest.raises(ConfigError, match=match):
        apply_adapter(_resnet18(), _spec(RESNET_TARGETS, **change))


def test_alpha_defaults_to_twice_the_rank():
    from transferlab.adapters.spec import parse_adapter

    spec = parse_adapter({"kind": "lora", "rank": 4, "target_modules": ["*"]})
    assert (spec.rank, spec.alpha, spec.dropout) == (4, 8.0, 0.0), spec
