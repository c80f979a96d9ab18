"""Share the first K layer groups; pretraining on digits 0–4 hands a file to a later run."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.clitools import FAST_OWN_STRATEGY, build_parts
from transferlab.backbones import create_backbone
from transferlab.cli.common import compose_config
from transferlab.run.engine import run

PRETRAIN = ["experiment=pretrain_digits04", "strategy.stages.train.epochs=2", "callbacks=none"]


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("pretrain") / "run"
    run(compose_config([*FAST_OWN_STRATEGY, *PRETRAIN]), run_dir)
    return run_dir


def test_pretraining_exports_a_backbone_that_a_later_run_starts_from(pretrained_run):
    exported = load_file(str(pretrained_run / "model.safetensors"))
    assert exported["head.weight"].shape[0] == 5, "the source task has the five classes 0–4"
    cfg = compose_config([*FAST_OWN_STRATEGY, "experiment=transfer_digits59", f"backbone.weights={pretrained_run}"])
    module, data, _ = build_parts(cfg)
    assert module.hparams["backbone_name"] == "small_cnn" and data.class_names == ["5", "6", "7", "8", "9"]
    for name, tensor in module.backbone.state_dict().items():
        assert torch.equal(tensor, exported[f"backbone.{name}"]), f"{name} not carried over from the pretraining"


@pytest.mark.parametrize("k", [0, 2, 4])
def test_share_first_k_keeps_groups_below_k_frozen_and_identical_and_reinitialises_the_rest(
    pretrained_run, tmp_path, k
):
    source = create_backbone("checkpoint", weights=str(pretrained_run))
    groups = [g.name for g in source.layer_groups()]
    start = {n: t.clone() for n, t in source.state_dict().items()}
    overrides = [
        *FAST_OWN_STRATEGY,
        "experiment=transfer_digits59",
        f"backbone.weights={pretrained_run}",
        "strategy=share_first_k",
        f"strategy.shared_groups={k}",
        "strategy.stages.train.epochs=2",
        "strategy.stages.train.warmup_epochs=0",
        "callbacks=none",
    ]
    cfg = compose_config(overrides)
    module, _, plan = build_parts(cfg)
    built = module.backbone.state_dict()
    shared = [g for g in source.layer_groups()[:k]]
    new = [g for g in source.layer_groups()[k:]]
    for group in new:
        for name in group.param_names:
            assert not torch.equal(built[name], start[name]), f"{group.name}/{name} should be re-initialised (k={k})"
    assert plan.steps[0].trainable_groups == tuple(groups[k:]), plan.steps[0].trainable_groups

    run_dir = tmp_path / "run"
    run(cfg, run_dir)
    exported = load_file(str(run_dir / "model.safetensors"))
    prefixes = tuple(p.rsplit(".", 1)[0] + "." for g in shared for p in g.param_names)
    for name, tensor in start.items():
        if name.startswith(prefixes):  # weights, BatchNorm statistics and counters of the shared groups
            assert torch.equal(exported[f"backbone.{name}"], tensor), f"shared {name} changed (k={k})"
    if new:
        changed = [n for g in new for n in g.param_names if not torch.equal(exported[f"backbone.{n}"], built[n])]
        assert changed, "the re-initialised groups must train"
