"""The engine end to end, in process: real packaged weights, real Lightning fits, real exports."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.clitools import FAST
from transferlab.backbones import create_backbone
from transferlab.cli.common import compose_config
from transferlab.run.engine import run


def _run(tmp_path: Path, *overrides: str) -> tuple[Path, dict]:
    cfg = compose_config([*FAST, *overrides])
    run_dir = tmp_path / "run"
    return run_dir, run(cfg, run_dir)


def test_feature_extraction_leaves_loaded_backbone_bit_identical_and_trains_only_the_head(tmp_path):
    loaded = create_backbone("efficientnet_lite0", weights="package").state_dict()
    run_dir, metrics = _run(tmp_path, "strategy=feature_extraction", "strategy.stages.probe.epochs=2")
    exported = load_file(str(run_dir / "model.safetensors"))
    bn_stats = [k for k in loaded if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(bn_stats) > 100, "efficientnet_lite0 has BatchNorm statistics to check"
    for name, tensor in loaded.items():
        assert torch.equal(exported[f"backbone.{name}"], tensor), f"backbone tensor {name} changed"
    head = {k: v for k, v in exported.items() if k.startswith("head.")}
    assert set(head) == {"head.weight", "head.bias"}, sorted(head)
    assert metrics["epochs"][0]["trainable_params"] == head["head.weight"].numel() + head["head.bias"].numel()
    fresh = torch.nn.Linear(head["head.weight"].shape[1], head["head.weight"].shape[0])
    assert not torch.equal(head["head.weight"], fresh.weight), "the head trained away from any fresh init"


@pytest.mark.parametrize("carry", ["best", "last"])
def test_carry_exports_the_best_or_the_last_weights_of_the_stage(tmp_path, carry):
    run_dir, metrics = _run(
        tmp_path,
        "strategy=feature_extraction",
        "strategy.stages.probe.epochs=3",
        "strategy.stages.probe.lr_head=0.05",
        f"strategy.stages.probe.carry={carry}",
    )
    exported = load_file(str(run_dir / "model.safetensors"))
    ckpt_dir = run_dir / "checkpoints" / "probe"
    ckpt = next(ckpt_dir.glob("best-*.ckpt")) if carry == "best" else ckpt_dir / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert torch.equal(exported["head.weight"], state["head.weight"]), f"carry={carry} must export {ckpt.name}"
    accs = [row["val/acc"] for row in metrics["epochs"]]
    assert metrics["stages"]["probe"]["val/acc"] == max(accs), (metrics["stages"]["probe"], accs)


def test_scratch_starts_from_random_weights_not_the_packaged_ones(tmp_path):
    loaded = create_backbone("efficientnet_lite0", weights="package").state_dict()
    run_dir, metrics = _run(
        tmp_path, "strategy=scratch", "strategy.stages.train.epochs=1", "strategy.stages.train.warmup_epochs=0"
    )
    exported = load_file(str(run_dir / "model.safetensors"))
    same = [k for k, v in loaded.items() if v.is_floating_point() and v.numel() > 1000]
    assert same, "some large tensors to compare"
    assert not any(torch.equal(exported[f"backbone.{k}"], loaded[k]) for k in same), "scratch used pretrained weights"
    assert metrics["epochs"][0]["trainable_params"] == metrics["total_params"], "scratch trains everything"
