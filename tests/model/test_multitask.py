"""Multi-task hard sharing: one trunk for every head, weighted losses, per-task metrics, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.clitools import build_parts
from transferlab.backbones import create_backbone
from transferlab.cli.common import compose_config
from transferlab.errors import ConfigError
from transferlab.model.module import TransferModule, multitask
from transferlab.model.tasks.loss_weighting import LossWeighting, UncertaintyWeighting
from transferlab.run.engine import run
from transferlab.run.trainer import build_trainer, trainer_kwargs
from transferlab.strategies import compile_plan, parse_strategy

FAST = [
    "experiment=multitask_digits",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "++trainer.log_every_n_steps=1",
    "trainer.accelerator=cpu",
    "callbacks=none",
    "strategy.stages.train.epochs=2",
    "strategy.stages.train.warmup_epochs=0",
    "data.tasks.low.image_size=16",
    "data.tasks.high.image_size=16",
    "data.tasks.low.batch_size=16",
    "data.tasks.high.batch_size=16",
]


def _module(weighting: LossWeighting) -> TransferModule:
    torch.manual_seed(0)
    backbone = create_backbone("small_cnn", weights=None)
    module = multitask(backbone, {"low": 3, "high": 4}, weighting)
    strategy = parse_strategy({"name": "all", "stages": {"train": {"epochs": 1, "trainable": "all", "lr_head": 0.01}}})
    plan = compile_plan(strategy, module.groups.infos(), sum(p.numel() for p in module.head_parameters()))
    module.set_step(plan.steps[0])
    return module


def test_every_head_reads_one_trunk_and_nothing_is_copied():
    module = _module(UncertaintyWeighting({"low": 1.0, "high": 1.0}))
    backbone = module.backbone
    backbones = [m for m in module.modules() if m is backbone]
    assert len(backbones) == 1, "exactly one trunk module"
    named = dict(module.named_parameters())
    assert all(not k.startswith("head.") for k in named), f"no single-task 'head' remains: {sorted(named)[:5]}"
    trunk = list(backbone.parameters())
    heads = list(module.heads.parameters())
    learned = list(module.loss_weighting.parameters())
    all_params = list(module.parameters())
    assert len({id(p) for p in all_params}) == len(all_params), "parameters are distinct tensors"
    count = sum(p.numel() for p in all_params)
    expected = sum(p.numel() for p in trunk) + sum(p.numel() for p in heads) + sum(p.numel() for p in learned)
    assert count == expected, f"module has {count} elements, trunk + heads + loss weights = {expected}: a copy?"
    assert module.num_trainable() == count, "the trunk is counted once among trainable parameters"
    assert len(learned) == 2, "one log-variance per task"

    x = torch.randn(4, 3, 16, 16)
    conv = trunk[0]
    grads = {}
    for task, n in (("low", 3), ("high", 4)):
        module.zero_grad()
        loss = F.cross_entropy(module(x, task), torch.arange(4) % n)
        loss.backward()
        assert conv.grad is not None and conv.grad.abs().sum() > 0, f"task {task} sends gradient into the trunk"
        other = "high" if task == "low" else "low"
        assert module.heads[other].weight.grad is None or not module.heads[other].weight.grad.any(), (
            f"task {task}'s loss must not touch head {other}"
        )
        grads[task] = conv.grad.clone()
    assert not torch.equal(grads["low"], grads["high"]), "both tasks reach the same tensor with different gradients"


def test_fixed_weight_zero_leaves_its_head_without_gradient():
    module = _module(LossWeighting({"low": 1.0, "high": 0.0}))
    x = torch.randn(4, 3, 16, 16)
    batch = {"low": (x, torch.tensor([0, 1, 2, 0])), "high": (x, torch.tensor([0, 1, 2, 3]))}
    module.log = lambda *a, **k: None  # no trainer attached: logging is not under test here
    loss = module.training_step(batch, 0)
    loss.backward()
    assert module.heads["low"].weight.grad.abs().sum() > 0, "weight 1 trains its head"
    assert not module.heads["high"].weight.grad.any(), "weight 0 gives its head a zero gradient"
    parts = {t: F.cross_entropy(module(x, t), y) for t, (x, y) in batch.items()}
    assert torch.allclose(loss, parts["low"]), f"total {loss} must equal 1·low + 0·high = {parts['low']}"


def test_uncertainty_weighting_formula():
    weighting = UncertaintyWeighting({"a": 1.0, "b": 2.0})
    with torch.no_grad():
        weighting.log_vars["a"].fill_(0.5)
    total = weighting({"a": torch.tensor(3.0), "b": torch.tensor(1.0)})
    expected = torch.exp(torch.tensor(-0.5)) * 3.0 + 0.5 + 2.0 * (1.0 + 0.0)
    assert torch.allclose(total, expected), f"Σ w·(exp(−s)·L + s): got {total}, expected {expected}"
    assert weighting.effective_weights()["b"] == pytest.approx(2.0), "effective weight w·exp(−s) at s=0"


def _scalars(run_dir: Path) -> EventAccumulator:
    files = sorted((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {run_dir}"
    acc = EventAccumulator(str(files[0].parent))
    acc.Reload()
    return acc


def test_short_run_logs_per_task_metrics_and_exports_every_head(tmp_path):
    cfg = compose_config([*FAST, "data.loss_weighting=uncertainty"])
    run_dir = tmp_path / "run"
    metrics = run(cfg, run_dir)

    final = metrics["final"]
    for task in ("low", "high"):
        assert 0.0 <= final[f"test/{task}/acc"] <= 1.0, f"per-task test accuracy of {task} in metrics.json: {final}"
    mean = (final["test/low/acc"] + final["test/high/acc"]) / 2
    assert final["test/acc"] == pytest.approx(mean), f"test/acc is the mean over tasks: {final}"
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert "test/high/loss" in on_disk["final"], "metrics.json carries per-task final metrics"
    assert metrics["epochs"][0]["trainable_params"] == metrics["total_params"], (
        "measured trainable count (heads + loss weights + trunk) matches the plan"
    )

    tags = set(_scalars(run_dir).Tags()["scalars"])
    wanted = {"val/low/acc", "val/high/acc", "val/low/loss", "val/acc", "train/low/loss", "train/high/loss"}
    wanted |= {
        "train/loss",
        "train/loss_epoch",
        "train/low/loss_epoch",
        "train/low/acc",
        "test/low/acc",
        "test/high/acc",
        "loss_weight/low",
        "loss_weight/high",
    }
    wanted |= {"lr/head.low", "lr/head.high", "lr/loss_weights"}
    assert wanted <= tags, f"missing TensorBoard tags: {sorted(wanted - tags)}"

    exported = load_file(str(run_dir / "model.safetensors"))
    assert {"heads.low.weight", "heads.high.weight", "heads.low.bias", "heads.high.bias"} <= set(exported), sorted(
        exported
    )
    assert not any(k.startswith(("head.", "loss_weighting.", "metrics.")) for k in exported), sorted(exported)
    trunk = [k for k in exported if k.startswith("backbone.")]
    module, _, _ = build_parts(cfg)
    assert sorted(trunk) == sorted(f"backbone.{k}" for k in module.backbone.state_dict()), "trunk exported once"

    log_vars = [h for h in metrics["epochs"] if "loss_weight/low" in h]
    assert log_vars and log_vars[-1]["loss_weight/low"] != pytest.approx(1.0, abs=1e-7), (
        f"the learned log-variance moved from 0 (weight 1): {log_vars[-1]}"
    )


def test_learned_log_variances_train_and_a_zero_weight_freezes_its_head(tmp_path):
    cfg = compose_config(
        [
            *FAST,
            "data.loss_weighting=uncertainty",
            "data.loss_weights.high=0",
            "export=false",
            "logger=none",
            "strategy.stages.train.epochs=1",
            "test_each_stage=false",
            # AdamW's decoupled decay would shrink even a head without gradient
            "strategy.stages.train.weight_decay=0",
        ]
    )
    module, data, plan = build_parts(cfg)
    before = {k: v.detach().clone() for k, v in module.state_dict().items()}
    module.set_step(plan.steps[0])
    assert all(p.requires_grad for p in module.loss_weighting.parameters()), "log-variances are trainable"
    trainer = build_trainer(trainer_kwargs(dict(cfg.trainer)), 1, None, [], str(tmp_path))
    trainer.fit(module, datamodule=data)
    groups = {g["name"] for g in trainer.optimizers[0].param_groups}
    assert "loss_weights" in groups and "head.low" in groups, f"named param groups: {sorted(groups)}"
    after = module.state_dict()
    assert not torch.equal(after["loss_weighting.log_vars.low"], before["loss_weighting.log_vars.low"]), (
        "the log-variance of a weighted task changed"
    )
    assert torch.equal(after["heads.high.weight"], before["heads.high.weight"]), "a task of weight 0 keeps its head"
    assert not torch.equal(after["heads.low.weight"], before["heads.low.weight"]), "a task of weight 1 trains its head"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("+data.tasks.low.colour=red", "data.tasks.low.colour"),
        ("+data.loss_weights.middle=1.0", "data.loss_weights.middle"),
        ("data.loss_weighting=gradnorm", "data.loss_weighting"),
        ("+data.extra=1", "data.extra"),
        ("data.loss_weights.low=-1", "data.loss_weights.low"),
    ],
)
def test_bad_multitask_config_names_the_key(override, key):
    cfg = compose_config([*FAST, override])
    with pytest.raises(ConfigError) as info:
        build_parts(cfg)
    assert key in str(info.value), f"the error must name {key}: {info.value}"
