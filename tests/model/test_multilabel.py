"""The multi-label task: its keys, its losses, thresholds tuned on validation only and applied on test and export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

from transferlab.backbones import create_backbone
from transferlab.cli.common import compose_config
from transferlab.model.module import TransferModule
from transferlab.model.multilabel_metrics import f1_scores, multilabel_scores, tune_thresholds
from transferlab.model.tasks.losses import multi_label_loss
from transferlab.model.tasks.multilabel import MultiLabelTask, ap_figure
from transferlab.model.tasks.options import TaskOptions
from transferlab.run.feature_cache import FeatureDataset
from transferlab.run.spec import parse_config
from transferlab.rundir.reload import load_saved_model

NAMES = ["cat", "dog", "car"]


def _identity_task(options: TaskOptions | None = None) -> MultiLabelTask:
    """A task whose logits are its features (identity head): fixed predictions in, metrics out."""
    task = MultiLabelTask(3, 3, NAMES, 0.0, options)
    with torch.no_grad():
        task.head.weight.copy_(torch.eye(3))
        task.head.bias.zero_()
    return task


def _no_reduce(t: torch.Tensor) -> torch.Tensor:
    return t


def _feed(task: MultiLabelTask, split: str, logits: torch.Tensor, targets: torch.Tensor, batch: int = 5) -> None:
    for i in range(0, len(logits), batch):
        task.eval_step(split, (logits[i : i + batch], targets[i : i + batch]), lambda x: x)  # type: ignore[arg-type]


def _data(seed: int, n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    targets = (torch.rand(n, 3, generator=g) < torch.tensor([0.5, 0.3, 0.2])).float()
    logits = 2.0 * targets - 1.0 + 1.5 * torch.randn(n, 3, generator=g)  # informative, overlapping
    return logits, targets


def test_keys_description_and_names():
    task = MultiLabelTask(32, 3, NAMES, 0.1, weight=torch.ones(3), pos_weight=torch.full((3,), 2.0))
    module = TransferModule(create_backbone("small_cnn", weights=None), task)
    keys = [k for k in module.state_dict() if not k.startswith("backbone.")]
    assert keys == ["head.weight", "head.bias", "head.thresholds"], f"only the head and its thresholds: {keys}"
    assert module.head.thresholds.tolist() == [0.5, 0.5, 0.5]
    assert task.describe() == {"num_classes": 3, "class_names": NAMES, "multi_label": True}
    assert module.hparams["multi_label"] is True, "checkpoints say the head is multi-label"
    assert task.monitor == "val/map" and task.monitor_mode == "max" and task.cache_blocker() is None
    assert {"val/map", "val/macro_f1", "val/micro_f1", "test/map", "test/macro_f1", "val/loss"} <= set(
        task.metric_names()
    )
    with pytest.raises(ValueError, match="pos_weight of shape"):
        MultiLabelTask(8, 3, NAMES, pos_weight=torch.ones(2))


@pytest.mark.parametrize(
    "options",
    [TaskOptions(), TaskOptions(label_smoothing=0.1), TaskOptions(loss="focal", focal_gamma=1.5)],
    ids=["bce", "smoothed", "focal"],
)
def test_training_loss_is_the_task_groups_and_evaluation_loss_is_plain_bce(options):
    weight, pos_weight = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([1.0, 3.0, 4.0])
    task = MultiLabelTask(3, 3, NAMES, 0.0, options, weight=weight, pos_weight=pos_weight)
    x, y = _data(0, 8)
    out = task.training_step((x, y), lambda v: v)
    gamma = options.focal_gamma if options.loss == "focal" else None
    want = multi_label_loss(
        task(x), y, weight=weight, pos_weight=pos_weight, smoothing=options.label_smoothing, gamma=gamma
    )
    assert torch.allclose(out.loss, want), (out.loss, want)
    _feed(task, "val", x, y)
    values = task.epoch_end("val", _no_reduce)
    plain = F.binary_cross_entropy_with_logits(task(x), y)
    assert values.recorded["val/loss"] == pytest.approx(float(plain.detach()), rel=1e-6), "val/loss is unweighted BCE"
    train = task.epoch_end("train", _no_reduce)
    assert train.recorded == {"train/loss": pytest.approx(float(out.loss.detach()))}


@pytest.mark.parametrize("mode", ["per_label", "global"])
def test_validation_tunes_the_thresholds_and_the_test_applies_them(mode):
    task = _identity_task(TaskOptions(threshold=mode))
    val_logits, val_targets = _data(1)
    _feed(task, "val", val_logits, val_targets)
    val = task.epoch_end("val", _no_reduce)
    val_scores = torch.sigmoid(val_logits).numpy()
    tuned = tune_thresholds(val_scores, val_targets.numpy(), mode)
    assert np.array_equal(task.head.thresholds.numpy(), tuned), "the buffer holds the thresholds tuned on val"
    want = multilabel_scores(val_scores, val_targets.numpy(), tuned)
    for name, value in want.items():
        assert val.recorded[f"val/{name}"] == pytest.approx(value), name

    # test data of another distribution: tuning on it would choose other thresholds
    test_logits, test_targets = _data(2)
    test_logits = test_logits + 1.0
    test_scores = torch.sigmoid(test_logits).numpy()
    assert not np.array_equal(tune_thresholds(test_scores, test_targets.numpy(), mode), tuned)
    _feed(task, "test", test_logits, test_targets)
    test = task.epoch_end("test", _no_reduce)
    assert np.array_equal(task.head.thresholds.numpy(), tuned), "the test never tunes"
    applied = f1_scores(test_scores, test_targets.numpy(), tuned)
    assert test.recorded["test/macro_f1"] == pytest.approx(applied["macro_f1"])
    assert test.recorded["test/micro_f1"] == pytest.approx(applied["micro_f1"])
    details = test.details
    assert details["thresholds"] == dict(zip(NAMES, map(float, tuned), strict=True))
    assert details["threshold_mode"] == mode and set(details["per_label"]) == set(NAMES)
    assert set(details["per_label"]["cat"]) == {"ap", "f1", "precision", "recall", "support", "threshold"}
    assert "test/ap_label/cat" in test.logged and "test/f1_label/car" in test.logged
    assert task.export_metadata()["thresholds"] == details["thresholds"]
    figure = test.figures["test/ap_per_label"]("probe")
    assert figure.axes and "probe" in figure.axes[0].get_title()


def test_the_sanity_check_and_an_empty_epoch_leave_the_thresholds_alone():
    task = _identity_task()
    task.sanity_checking = True
    _feed(task, "val", *_data(3))
    values = task.epoch_end("val", _no_reduce)
    assert task.head.thresholds.tolist() == [0.5, 0.5, 0.5], "a sanity check must not tune"
    assert 0.0 <= values.recorded["val/map"] <= 1.0
    task.sanity_checking = False
    empty = task.epoch_end("val", _no_reduce)
    assert task.head.thresholds.tolist() == [0.5, 0.5, 0.5] and np.isnan(empty.recorded["val/map"])
    assert ap_figure({"a": {"ap": None, "threshold": 0.5}}).axes, "a label without positives draws empty"


def test_cached_features_keep_multi_hot_labels_as_floats():
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    dataset = FeatureDataset(torch.zeros(2, 4), labels)
    assert dataset.labels.dtype == torch.float32 and torch.equal(dataset.__getitems__([1, 0])[1], labels.flip(0))
    assert FeatureDataset(torch.zeros(2, 4), torch.tensor([1, 0])).labels.dtype == torch.int64


# ---- one real run (in process): two stages, the first on cached features ------------------------------------
RUN = [
    "data=synthetic",
    "data.multi_label=true",
    "data.num_classes=5",
    "data.image_size=16",
    "backbone=small_cnn",
    "backbone.weights=null",
    "strategy=lp_ft",
    "strategy.stages.probe.epochs=3",
    "strategy.stages.finetune.epochs=2",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=1",
    "callbacks=none",
    "seed=4",
]


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory) -> tuple[Path, dict]:
    from transferlab.run.engine import run

    run_dir = tmp_path_factory.mktemp("multilabel") / "run"
    cfg = compose_config([*RUN, f"feature_cache.dir={run_dir.parent / 'cache'}"])
    metrics = run(cfg, run_dir)
    return run_dir, metrics


def _scores(module: TransferModule, dataset) -> tuple[np.ndarray, np.ndarray]:
    module.eval()
    x, y = dataset.__getitems__(list(range(len(dataset))))
    with torch.no_grad():
        return torch.sigmoid(module(x)).numpy(), y.numpy()


def test_a_run_records_multilabel_metrics_and_exports_the_thresholds_of_its_best_epoch(multilabel_run):
    run_dir, metrics = multilabel_run
    final = metrics["final"]
    assert next(iter(final)) == "test/map" and metrics["optimized_metric"] == "val/map", final
    for key in ("test/map", "test/macro_f1", "test/micro_f1", "test/loss", "val/map", "val/macro_f1"):
        assert isinstance(final[key], float), f"{key} missing in {final}"
    assert "val/acc" not in final and "test/acc" not in final
    exported = load_file(str(run_dir / "model.safetensors"))
    with safe_open(str(run_dir / "model.safetensors"), framework="pt") as f:
        meta = f.metadata()
    thresholds = json.loads(meta["thresholds"])
    assert list(thresholds) == [f"label_{i}" for i in range(5)] and meta["threshold_mode"] == "per_label"
    assert thresholds == pytest.approx(dict(zip(thresholds, exported["head.thresholds"].tolist(), strict=True)))
    assert metrics["test_details"]["thresholds"] == pytest.approx(thresholds), "the test used the exported ones"

    # rebuild the exported model: its thresholds are the ones tuned on val with these weights (carry: best),
    # and applied to the test split they give the run's test metrics
    saved = load_saved_model(run_dir)
    assert saved.multi_label and saved.thresholds == pytest.approx(thresholds)
    from transferlab.run.assembly import assemble, for_saved_model

    config = parse_config(saved.config)
    parts = assemble(for_saved_model(config, saved.backbone_name), load_weights=False)
    parts.module.load_state_dict(saved.state_dict, strict=False)
    stored = parts.module.head.thresholds.numpy()
    val_scores, val_targets = _scores(parts.module, parts.data.val_set)
    assert np.array_equal(tune_thresholds(val_scores, val_targets, "per_label"), stored)
    best = metrics["stages"]["finetune"]
    assert f1_scores(val_scores, val_targets, stored)["macro_f1"] == pytest.approx(best["val/macro_f1"], abs=1e-6)
    test_scores, test_targets = _scores(parts.module, parts.data.test_set)
    again = multilabel_scores(test_scores, test_targets, stored)
    for name in ("map", "micro_f1", "macro_f1", "subset_acc"):
        assert again[name] == pytest.approx(final[f"test/{name}"], abs=1e-6), name


def test_the_probe_trained_on_cached_features_and_every_epoch_records_val_map(multilabel_run):
    run_dir, metrics = multilabel_run
    assert list((run_dir.parent / "cache").glob("*.safetensors")), "the frozen probe stage cached its features"
    assert set(metrics["stages"]) == {"probe", "finetune"} and len(metrics["epochs"]) == 5
    assert all("val/map" in row and "train/loss" in row for row in metrics["epochs"]), metrics["epochs"][0]
    thresholds = torch.tensor(list(metrics["test_details"]["thresholds"].values()))
    assert not torch.equal(thresholds, torch.full((5,), 0.5)), "tuned, not the default"
