"""LwF end to end: the source head, the penalty over a real run, the fallback, and frozen-copy accounting."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.clitools import build_parts
from tests.regularizers.runs import fast_run
from transferlab.backbones import load_packaged_state_dict
from transferlab.cli.common import compose_config
from transferlab.regularizers.lwf import LwF


def _penalties(run_dir: Path) -> list[float]:
    """The per-step ``train/penalty`` values the run logged to TensorBoard, in step order."""
    events = EventAccumulator(str(next((run_dir / "tensorboard").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    assert "train/penalty" in events.Tags()["scalars"], f"no train/penalty in {events.Tags()['scalars']}"
    return [e.value for e in sorted(events.Scalars("train/penalty"), key=lambda e: e.step)]


def test_source_head_of_efficientnet_lite0_is_the_packaged_imagenet_classifier():
    module, _, _ = build_parts(compose_config(["data.image_size=32", "strategy=finetune", "regularizer=lwf"]))
    reg = module.regularizer
    assert isinstance(reg, LwF) and reg.mode == "logits", f"packaged weights come with a head: {reg}"
    state = load_packaged_state_dict("efficientnet_lite0")
    assert tuple(reg.old_head.weight.shape) == (1000, 1280), f"ImageNet head: {tuple(reg.old_head.weight.shape)}"
    assert torch.equal(reg.old_head.weight, state["classifier.weight"]), "the packaged classifier's weights"
    assert torch.equal(reg.old_head.bias, state["classifier.bias"]), "the packaged classifier's bias"


def test_penalty_starts_at_zero_grows_with_training_and_adds_no_trainable_params(tmp_path):
    # bn=eval: the current model and the copy both use running statistics, so at step 0 they are the same
    # function (with bn=train the batch statistics differ from the copy's running ones from the start).
    metrics, _ = fast_run(
        tmp_path / "lwf",
        "regularizer=lwf",
        "strategy.stages.finetune.bn=eval",
        "strategy.stages.finetune.lr_backbone=0.01",
        "logger=tensorboard",
        "trainer.log_every_n_steps=1",
    )
    penalties = _penalties(tmp_path / "lwf")
    print(f"LwF train/penalty per step: {penalties}")
    assert len(penalties) == 6, f"one value per step (3 batches × 2 epochs): {penalties}"
    assert abs(penalties[0]) < 1e-5, f"at the first step the model is the source model: {penalties[0]}"
    assert penalties[-1] > 1e-3, f"after training the model has moved away from the source: {penalties}"

    plain, _, plan = build_parts(compose_config(["data.image_size=32", "strategy=finetune"]))
    plain.set_step(plan.steps[0])
    trainable = {row["trainable_params"] for row in metrics["epochs"]}
    assert trainable == {plain.num_trainable()}, f"lwf {trainable} vs none {plain.num_trainable()}: copy is frozen"
    assert metrics["total_params"] == plan.total_params, "the plan does not count the frozen copy"


def test_export_head_is_the_source_of_a_checkpoint_run(tmp_path):
    fast_run(tmp_path / "first", "trainer.limit_train_batches=1", "strategy.stages.finetune.epochs=1")
    source = f"backbone.weights={tmp_path / 'first'}"
    cfg = compose_config(["data.image_size=32", "strategy=finetune", "backbone=checkpoint", source, "regularizer=lwf"])
    module, _, _ = build_parts(cfg)
    reg = module.regularizer
    assert isinstance(reg, LwF) and reg.mode == "logits", f"an export carries head.*: {reg}"
    assert tuple(reg.old_head.weight.shape) == (10, 1280), "the first run's 10-class digits head is the source"


def test_random_resnet18_falls_back_to_feature_distillation(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="transferlab.regularizers"):
        metrics, _ = fast_run(
            tmp_path / "rn", "backbone=resnet18", "backbone.weights=null", "regularizer=lwf", "regularizer.weight=2"
        )
    lines = [r.getMessage() for r in caplog.records if "no source head" in r.getMessage()]
    assert len(lines) == 1, f"one INFO line says LwF distils features: {caplog.text!r}"
    assert "random weights" in lines[0], f"the line gives the reason: {lines[0]!r}"
    assert metrics["final"]["test/acc"] is not None, f"the run completes: {metrics['final']}"
    assert torch.isfinite(torch.tensor(metrics["epochs"][-1]["train/loss"])), "a finite training loss"
