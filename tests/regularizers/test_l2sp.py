"""L2-SP end to end: a zero penalty is plain fine-tuning bit for bit; a stronger one stays nearer w0."""

from __future__ import annotations

import pytest
import torch

from tests.regularizers.runs import comparable, fast_run
from transferlab.backbones import create_backbone

# A high backbone rate, plain L2 and weight decay off, and the last (not the best) epoch exported: the
# distance to w0 then depends only on the rate and the L2-SP pull.
MOVING = [
    "strategy.stages.finetune.lr_backbone=0.01",
    "strategy.stages.finetune.weight_decay=0",
    "strategy.stages.finetune.carry=last",
]


@pytest.fixture(scope="module")
def start() -> dict[str, torch.Tensor]:
    """The packaged backbone's parameters (not BatchNorm statistics), keyed as in an export."""
    backbone = create_backbone("efficientnet_lite0", weights="package")
    return {f"backbone.{n}": p.detach().clone() for n, p in backbone.named_parameters()}


def distance(exported: dict[str, torch.Tensor], start: dict[str, torch.Tensor]) -> float:
    """‖w − w0‖ over every backbone parameter."""
    return sum((exported[k] - w0).pow(2).sum() for k, w0 in start.items()).sqrt().item()


def test_zero_strength_reproduces_plain_finetuning_bit_for_bit(tmp_path):
    plain, plain_w = fast_run(tmp_path / "none", "regularizer=none")
    again, again_w = fast_run(tmp_path / "none2", "regularizer=none")
    # Without this the comparison below would prove nothing.
    assert comparable(plain) == comparable(again), "regularizer=none must be deterministic for the same seed"
    assert all(torch.equal(plain_w[k], again_w[k]) for k in plain_w), "same seed, same weights"

    zero, zero_w = fast_run(tmp_path / "zero", "regularizer=l2sp", "regularizer.alpha=0", "regularizer.beta=0")
    assert comparable(zero) == comparable(plain), (
        f"l2sp alpha=0 beta=0 changed the metrics: {zero['final']} vs {plain['final']}"
    )
    assert set(zero_w) == set(plain_w), "the export holds the same tensors (no regularizer buffers)"
    changed = [k for k in plain_w if not torch.equal(zero_w[k], plain_w[k])]
    assert not changed, f"l2sp alpha=0 beta=0 changed {len(changed)} exported tensors, e.g. {changed[:3]}"


@pytest.mark.slow  # two real fine-tunes (~55 s of CPU): the main suite keeps the zero-strength bit-for-bit check
def test_stronger_l2sp_leaves_the_backbone_closer_to_its_start(tmp_path, start):
    distances = {}
    for alpha in (0, 1, 100):
        _, weights = fast_run(
            tmp_path / f"a{alpha}", *MOVING, "regularizer=l2sp", f"regularizer.alpha={alpha}", "regularizer.beta=0"
        )
        distances[alpha] = distance(weights, start)
    print(f"L2-SP ‖w − w0‖ by alpha: {distances}")
    assert distances[0] > 0, f"the backbone trained at all: {distances}"
    assert distances[0] > distances[1] > distances[100], f"‖w − w0‖ must fall as alpha grows: {distances}"
    assert distances[100] < 0.5 * distances[0], f"alpha=100 should pull clearly: {distances}"


@pytest.mark.slow  # a real subprocess run: in CI's slow phase, keeping the README suite under 15 min
def test_lower_backbone_lr_alone_leaves_the_backbone_closer(tmp_path, start):
    distances = {}
    for lr in ("1e-3", "1e-4"):
        _, weights = fast_run(
            tmp_path / f"lr{lr}",
            "strategy.stages.finetune.lr_backbone=" + lr,
            "strategy.stages.finetune.weight_decay=0",
            "strategy.stages.finetune.carry=last",
        )
        distances[lr] = distance(weights, start)
    print(f"‖w − w0‖ by lr_backbone (no regularizer): {distances}")
    assert distances["1e-3"] > distances["1e-4"] > 0, f"a 10× lower backbone rate must move less: {distances}"
