"""The ``regularizer`` config group: names, keys, values and the modules they build."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transferlab.errors import ConfigError
from transferlab.model.module import TransferModule, classifier
from transferlab.regularizers.factory import build_regularizer, parse_regularizer
from transferlab.regularizers.l2sp import L2SP
from transferlab.regularizers.lwf import LwF
from transferlab.regularizers.source import StartingPoint


@pytest.fixture
def module(tiny_backbone) -> TransferModule:
    return classifier(tiny_backbone, num_classes=3)


PRETRAINED = StartingPoint("tiny", "some.safetensors")
RANDOM = StartingPoint("tiny", None)


def test_none_builds_nothing(module):
    assert build_regularizer({"name": "none"}, module.backbone, PRETRAINED) is None, "regularizer=none adds no penalty"
    assert build_regularizer({}, module.backbone, PRETRAINED) is None, "a missing group means none"


def test_defaults_are_filled_in():
    assert parse_regularizer({"name": "l2sp"}) == ("l2sp", {"alpha": 0.01, "beta": 0.01}), "l2sp defaults"
    assert parse_regularizer({"name": "lwf"}) == ("lwf", {"weight": 1.0, "temperature": 2.0}), "lwf defaults"


def test_unknown_name_lists_the_names(module):
    with pytest.raises(ConfigError) as err:
        build_regularizer({"name": "l2-sp"}, module.backbone, PRETRAINED)
    text = str(err.value)
    assert "regularizer.name='l2-sp'" in text and all(n in text for n in ("none", "l2sp", "lwf")), text


@pytest.mark.parametrize(
    ("cfg", "needles"),
    [
        ({"name": "l2sp", "alpha": -1.0}, ["regularizer.alpha=-1.0", "≥ 0", "Fix"]),
        ({"name": "l2sp", "beta": "big"}, ["regularizer.beta='big'", "number"]),
        ({"name": "l2sp", "alpha": True}, ["regularizer.alpha=True"]),
        ({"name": "l2sp", "alpha": float("nan")}, ["regularizer.alpha=nan", "finite"]),
        ({"name": "lwf", "temperature": 0}, ["regularizer.temperature=0", "> 0"]),
        ({"name": "lwf", "weight": -0.5}, ["regularizer.weight=-0.5"]),
        ({"name": "l2sp", "lambda": 1.0}, ["regularizer.lambda=1.0", "alpha, beta", "Fix"]),
        ({"name": "lwf", "alpha": 1.0}, ["regularizer.alpha=1.0", "weight, temperature"]),
    ],
)
def test_bad_keys_and_values_name_the_key_the_value_and_the_fix(cfg, needles):
    with pytest.raises(ConfigError) as err:
        parse_regularizer(cfg)
    assert all(n in str(err.value) for n in needles), f"{cfg}: message {str(err.value)!r} lacks {needles}"


def test_l2sp_is_zero_at_the_start_without_beta_and_holds_only_frozen_tensors(module):
    reg = build_regularizer({"name": "l2sp", "alpha": 1.0, "beta": 0.0}, module.backbone, PRETRAINED)
    assert isinstance(reg, L2SP), f"l2sp builds L2SP, got {type(reg)}"
    assert not list(reg.parameters()), "L2-SP keeps w0 as buffers, never as parameters"
    x = torch.randn(2, 3, 16, 16)
    assert reg(module, x, module.backbone(x)).item() == 0.0, "w = w0 at the start"
    with torch.no_grad():
        module.backbone.stem[0].weight.add_(1.0)
    expected = 0.5 * module.backbone.stem[0].weight.numel()
    got = reg(module, x, module.backbone(x)).item()
    assert got == pytest.approx(expected), f"alpha/2·‖w−w0‖² with one tensor moved by 1: {got} vs {expected}"


def test_l2sp_beta_covers_the_head_and_skips_frozen_params(module):
    reg = build_regularizer({"name": "l2sp", "alpha": 0.0, "beta": 2.0}, module.backbone, PRETRAINED)
    x = torch.randn(2, 3, 16, 16)
    head_sq = sum(p.pow(2).sum() for p in module.head.parameters()).item()
    assert reg(module, x, module.backbone(x)).item() == pytest.approx(head_sq), "beta/2·‖head‖² with beta=2"
    module.head.requires_grad_(False)
    assert reg(module, x, module.backbone(x)).item() == 0.0, "frozen parameters are skipped"


def test_l2sp_random_backbone_gets_plain_l2_not_a_pull_to_its_random_init(module):
    reg = build_regularizer({"name": "l2sp", "alpha": 1.0, "beta": 0.0}, module.backbone, RANDOM)
    assert isinstance(reg, L2SP) and reg.anchored == [], f"random init has no starting point: {reg}"
    assert not list(reg.buffers()), "no w0 stored for a randomly initialised backbone"


def test_l2sp_shared_groups_puts_reinitialised_groups_under_beta(tiny_backbone):
    module = classifier(tiny_backbone, num_classes=3)
    reinitialised = frozenset(n for group in module.groups.groups[1:] for n in group.param_names)  # shared_groups=1
    start = StartingPoint("tiny", "some.safetensors", reinitialised=reinitialised)
    reg = build_regularizer({"name": "l2sp"}, module.backbone, start)
    assert all(n.startswith("stem.") for n in reg.anchored), f"only the shared stem is anchored: {reg.anchored}"
    assert reg.decayed and all(n.startswith("block") for n in reg.decayed), f"new groups decay: {reg.decayed}"


def test_lwf_copy_is_frozen_and_stays_in_eval_mode(module):
    reg = build_regularizer({"name": "lwf"}, module.backbone, RANDOM)
    module.regularizer = reg
    assert isinstance(reg, LwF) and reg.mode == "features", "no source head for random weights: fallback"
    assert not any(p.requires_grad for p in reg.parameters()), "the copy holds only frozen tensors"
    module.train()
    assert not any(m.training for m in reg.old_backbone.modules()), "the copy runs in eval mode"
    bn = reg.old_backbone.stem[1]
    before = bn.running_mean.clone()
    x = torch.randn(4, 3, 16, 16)
    penalty = reg(module, x, module.backbone(x))
    assert torch.equal(bn.running_mean, before), "the copy's BatchNorm statistics never move"
    assert penalty.requires_grad, "gradients flow into the current features"
    penalty.backward()
    assert module.backbone.stem[0].weight.grad is not None, "the penalty reaches the current backbone"
    assert reg.old_backbone.stem[0].weight.grad is None, "nothing reaches the copy"


def test_lwf_with_a_head_is_zero_when_nothing_changed(module):
    reg = LwF(module.backbone, weight=1.0, temperature=2.0, source_head=nn.Linear(16, 5))
    module.eval()
    x = torch.randn(4, 3, 16, 16)
    penalty = reg(module, x, module.backbone(x)).item()
    assert abs(penalty) < 1e-6, f"identical models agree: KL should be 0, got {penalty}"
