"""One real (small) run, then everything a user gets from it: files, TensorBoard, eval, reloads."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.clitools import FAST, run_cli

OVERRIDES = [
    "trainer.log_every_n_steps=1",
    "strategy=lp_ft",
    "strategy.stages.probe.epochs=1",
    "strategy.stages.finetune.epochs=2",
    "seed=3",
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, dict, str]:
    tmp = tmp_path_factory.mktemp("outputs")
    run_dir = tmp / "run"
    proc = run_cli("train", *FAST, *OVERRIDES, f"hydra.run.dir={run_dir}", cwd=tmp)
    return run_dir, json.loads((run_dir / "metrics.json").read_text()), proc.stdout


def _event_dir(run_dir: Path) -> Path:
    """The dir of the run's one TensorBoard event stream (``tensorboard/<run name>``)."""
    (events,) = (run_dir / "tensorboard").rglob("events.out.tfevents.*")
    return events.parent


def test_run_dir_holds_config_events_checkpoints_metrics_and_model(finished_run):
    run_dir, metrics, _ = finished_run
    for rel in (
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "config.yaml",
        "model.safetensors",
        "metrics.json",
    ):
        assert (run_dir / rel).is_file(), f"{rel} missing in {sorted(p.name for p in run_dir.iterdir())}"
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*")), "no TensorBoard event file"
    assert (run_dir / "checkpoints" / "probe" / "last.ckpt").is_file(), "probe step checkpoint"
    assert (run_dir / "checkpoints" / "finetune" / "last.ckpt").is_file(), "finetune step checkpoint"
    assert set(metrics["stages"]) == {"probe", "finetune"}, metrics["stages"]
    for stage in metrics["stages"].values():
        assert 0.0 <= stage["test/acc"] <= 1.0 and 0.0 <= stage["val/acc"] <= 1.0, stage
    chosen = metrics["selection"]["stage"]  # strategy.final=best: the stage best on val
    assert metrics["selection"]["scores"][chosen] == max(metrics["selection"]["scores"].values())
    assert metrics["final"]["test/acc"] == metrics["stages"][chosen]["test/acc"], metrics["final"]
    assert len(metrics["epochs"]) == 3, "one history row per epoch"


def test_run_prints_where_outputs_are_and_a_metrics_table(finished_run):
    run_dir, _, stdout = finished_run
    assert f"→ {run_dir}" in stdout and "best val/acc" in stdout and "final: test/acc" in stdout, stdout


def test_tensorboard_has_scalars_and_an_hparams_session_with_real_metrics(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir, metrics, _ = finished_run
    acc = EventAccumulator(str(_event_dir(run_dir)), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in (
        "train/loss",
        "val/loss",
        "val/acc",
        "test/acc",
        "lr/head",
        "lr/backbone.group7",
        "trainable_params",
        "stage",
        "hparams/test_acc",
    ):
        assert tag in tags, f"{tag} not in {sorted(tags)}"
    steps = [e.step for e in acc.Scalars("val/acc")]
    assert steps == sorted(steps) and len(set(steps)) == 3, f"val/acc steps must run on across stages: {steps}"
    assert acc.Scalars("hparams/test_acc")[-1].value == pytest.approx(metrics["final"]["test/acc"], abs=1e-6)
    content = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in content, f"no HParams session: {list(content)}"
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["strategy"].string_value == "lp_ft" and start.hparams["seed"].number_value == 3
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in exp.metric_infos} >= {"hparams/test_acc", "hparams/val_acc"}, exp.metric_infos


def test_eval_reloads_the_run_and_reproduces_its_test_accuracy(finished_run, tmp_path):
    run_dir, metrics, _ = finished_run
    out = tmp_path / "eval.json"
    run_cli("eval", str(run_dir), "--output", str(out))
    got = json.loads(out.read_text())
    assert got["test/acc"] == pytest.approx(metrics["final"]["test/acc"], abs=1e-6), (got, metrics["final"])
    ckpt = run_dir / "checkpoints" / "finetune" / "last.ckpt"
    printed = run_cli("eval", str(ckpt)).stdout
    assert "test/acc" in printed and str(ckpt) in printed, printed


def test_exported_model_and_lightning_ckpt_reload_as_a_backbone(finished_run):
    from transferlab.backbones import create_backbone

    run_dir, _, _ = finished_run
    exported = load_file(str(run_dir / "model.safetensors"))
    for source in (run_dir, run_dir / "model.safetensors"):
        backbone = create_backbone("checkpoint", weights=str(source))
        for name, tensor in backbone.state_dict().items():
            assert torch.equal(tensor, exported[f"backbone.{name}"]), f"{source}: {name} differs from the export"
    ckpt_path = run_dir / "checkpoints" / "finetune" / "last.ckpt"
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    backbone = create_backbone("checkpoint", weights=str(ckpt_path))
    for name, tensor in backbone.state_dict().items():
        assert torch.equal(tensor, ckpt["state_dict"][f"backbone.{name}"]), f".ckpt: {name} differs"


@pytest.mark.slow  # a real subprocess run: in CI's slow phase, keeping the README suite under 15 min
def test_a_later_run_starts_from_the_finished_run(finished_run, tmp_path):
    run_dir, _, _ = finished_run
    out = run_cli("plan", "backbone=checkpoint", f"backbone.weights={run_dir}", "data.image_size=32").stdout
    assert "backbone efficientnet_lite0" in out, out


def test_the_run_saves_its_split_and_eval_tests_on_exactly_that_split(finished_run, tmp_path):
    run_dir, metrics, _ = finished_run
    split = json.loads((run_dir / "split.json").read_text())
    members = {k: set(v) for k, v in split["members"].items()}
    assert split["counts"] == {k: len(v) for k, v in split["members"].items()} and "split.json" in metrics["files"]
    assert not members["train"] & members["test"] and not members["val"] & members["test"], "splits overlap"
    # the README's old example: another data.seed would re-split the pool and test on training images
    out = tmp_path / "reseeded.json"
    proc = run_cli("eval", str(run_dir), "data.seed=1", "--output", str(out))
    got = json.loads(out.read_text())
    assert "data.seed only re-split the run's own data" in proc.stderr, proc.stderr
    assert got["split"] == "own" and got["in_train"] == 0 and got["tested_samples"] == len(members["test"]), got
    assert got["test/acc"] == pytest.approx(metrics["final"]["test/acc"], abs=1e-6)
    assert "on the run's own test split" in proc.stdout
    for banner in ("GPU available", "TPU available", "💡", "litlogger", "litmodels"):
        assert banner not in proc.stdout + proc.stderr, f"eval printed Lightning's {banner!r}"


@pytest.mark.slow  # a real subprocess run: in CI's slow phase, keeping the README suite under 15 min
def test_eval_refuses_other_data_that_holds_the_runs_training_samples(finished_run, tmp_path):
    run_dir, _, _ = finished_run
    # other data (the classes named explicitly) whose larger test split takes samples the run trained on
    other = ["data.classes=[0,1,2,3,4,5,6,7,8,9]", "data.test_fraction=0.5"]
    proc = run_cli("eval", str(run_dir), *other, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "in the run's training split" in proc.stderr and "--allow-overlap" in proc.stderr, proc.stderr
    out = tmp_path / "overlap.json"
    proc = run_cli("eval", str(run_dir), *other, "--allow-overlap", "--output", str(out))
    got = json.loads(out.read_text())
    assert got["split"] == "other" and got["in_train"] > 0, got
    assert f"other data ({got['tested_samples']} samples; {got['in_train']} in the run's training split" in proc.stdout
