"""Speed settings: channels-last and torch.compile keep checkpoints, exports and unfreezing intact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.clitools import FAST
from transferlab.backbones import create_backbone
from transferlab.cli.common import compose_config
from transferlab.errors import ConfigError
from transferlab.run.engine import run
from transferlab.run.speed import check_speed_settings, compile_options, split_speed_settings, wants_channels_last
from transferlab.rundir.reload import load_saved_model

# small_cnn, random init, gradual unfreezing: 4 plan steps, each unfreezing one more layer group
UNFREEZE = [
    "backbone=small_cnn",
    "backbone.weights=null",
    "data=synthetic",
    "strategy=gradual_unfreeze",
    "strategy.stages.unfreeze.epochs=4",
    "seed=1",
]


def _run(tmp_path: Path, name: str, *overrides: str, base: tuple[str, ...] = tuple(UNFREEZE)) -> tuple[Path, dict]:
    run_dir = tmp_path / name
    return run_dir, run(compose_config([*FAST, *base, "feature_cache.dir=null", *overrides]), run_dir)


def _checkpoint_keys(run_dir: Path) -> set[str]:
    keys: set[str] = set()
    for ckpt in (run_dir / "checkpoints").rglob("*.ckpt"):
        keys |= set(torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"])
    return keys


@pytest.mark.parametrize("backend", ["aot_eager"])
def test_compiled_backbone_survives_unfreezing_checkpoints_and_export(tmp_path, backend):
    plain_dir, plain = _run(tmp_path, "plain")
    compiled_dir, compiled = _run(tmp_path, "compiled", f"trainer.compile={{backend: {backend}}}")
    # unfreezing happened under compilation: the trainable count grew step by step, as without it
    counts = [r["trainable_params"] for r in compiled["epochs"]]
    assert counts == [r["trainable_params"] for r in plain["epochs"]] and counts[0] < counts[-1]
    # no torch.compile wrapper names anywhere: checkpoints and export have the plain module's keys
    keys = _checkpoint_keys(compiled_dir)
    assert keys == _checkpoint_keys(plain_dir) and not any("_orig_mod" in k for k in keys)
    exported, reference = load_file(compiled_dir / "model.safetensors"), load_file(plain_dir / "model.safetensors")
    assert exported.keys() == reference.keys()
    for key in reference:  # the compiled graph computes what eager mode computes
        torch.testing.assert_close(exported[key], reference[key], rtol=1e-4, atol=1e-5)
    saved = load_saved_model(compiled_dir)  # and the export reloads as a plain backbone + head
    backbone = create_backbone("checkpoint", weights=str(compiled_dir / "model.safetensors"))
    assert saved.backbone_name == "small_cnn" and backbone(torch.zeros(2, 3, 32, 32)).shape[0] == 2


def test_channels_last_trains_and_exports_contiguous_weights(tmp_path):
    base = (*UNFREEZE[:3], "strategy=finetune", "strategy.stages.finetune.epochs=2")
    plain_dir, plain = _run(tmp_path, "plain", base=base)
    nhwc_dir, nhwc = _run(tmp_path, "nhwc", "trainer.channels_last=true", base=base)
    exported, reference = load_file(nhwc_dir / "model.safetensors"), load_file(plain_dir / "model.safetensors")
    # Same training up to the rounding of another convolution algorithm, measured over the whole model: Adam
    # turns rounding-level gradients (e.g. of conv biases just before BatchNorm, ~0 in theory) into full steps.
    keys = [k for k, v in reference.items() if v.is_floating_point()]
    flat_ref = torch.cat([reference[k].flatten() for k in keys])
    flat = torch.cat([exported[k].flatten() for k in keys])
    assert (flat - flat_ref).norm() / flat_ref.norm() < 1e-3
    assert all(t.is_contiguous() for t in exported.values())
    assert nhwc["final"]["test/acc"] == pytest.approx(plain["final"]["test/acc"], abs=0.02)


def test_speed_settings_are_checked_and_kept_out_of_the_trainer():
    speed, rest = split_speed_settings({"channels_last": "auto", "compile": True, "devices": 1})
    assert speed == {"channels_last": "auto", "compile": True} and rest == {"devices": 1}
    cnn, mlp = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), torch.nn.Sequential(torch.nn.Linear(3, 4))
    assert wants_channels_last("auto", cnn, on_gpu=True) and not wants_channels_last("auto", cnn, on_gpu=False)
    assert not wants_channels_last("auto", mlp, on_gpu=True) and wants_channels_last(True, mlp, on_gpu=False)
    assert compile_options(False) is None and compile_options(True) == {}
    assert compile_options({"mode": "max-autotune"}) == {"mode": "max-autotune"}
    with pytest.raises(ConfigError, match=r"unknown torch\.compile argument"):
        compile_options({"mood": "fast"})
    with pytest.raises(ConfigError, match=r"trainer\.channels_last='yes'"):
        check_speed_settings({"channels_last": "yes"})


@pytest.mark.slow
def test_inductor_compiled_run_matches_eager(tmp_path):
    _, plain = _run(tmp_path, "plain")
    compiled_dir, compiled = _run(tmp_path, "inductor", "trainer.compile=true")
    assert not any("_orig_mod" in k for k in _checkpoint_keys(compiled_dir))
    assert compiled["final"]["test/acc"] == pytest.approx(plain["final"]["test/acc"], abs=0.02)
