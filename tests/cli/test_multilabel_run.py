"""A real multi-label run from the command line: metrics, exported thresholds, eval, TensorBoard, report, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.clitools import FAST, REPO, run_cli
from tests.run.killer import ENV

MULTI_LABEL = [
    *FAST,
    "data=synthetic",
    "data.multi_label=true",
    "data.num_classes=6",
    "backbone=small_cnn",
    "backbone.weights=null",
    "trainer.log_every_n_steps=1",
]
TWO_STAGES = [*MULTI_LABEL, "strategy=lp_ft", "strategy.stages.probe.epochs=2", "strategy.stages.finetune.epochs=2"]


# real subprocess runs: in .ci/run's slow phase (the README suite stays under 15 min); the in-process 2-stage
# multi-label run of tests/model/test_multilabel.py keeps multi-label training in the main suite
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, dict, str]:
    tmp = tmp_path_factory.mktemp("multilabel")
    run_dir = tmp / "run"
    proc = run_cli("train", *TWO_STAGES, "seed=3", f"hydra.run.dir={run_dir}", cwd=tmp)
    return run_dir, json.loads((run_dir / "metrics.json").read_text()), proc.stdout


def _exported(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = str(run_dir / "model.safetensors")
    with safe_open(path, framework="pt") as f:
        return load_file(path), dict(f.metadata())


def _test_scores(run_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores and targets of the run's test split from the exported model, and its stored thresholds."""
    from transferlab.run.assembly import assemble, for_saved_model
    from transferlab.run.spec import parse_config
    from transferlab.rundir.reload import load_saved_model

    saved = load_saved_model(run_dir)
    parts = assemble(for_saved_model(parse_config(saved.config), saved.backbone_name), load_weights=False, data="test")
    parts.module.load_state_dict(saved.state_dict, strict=False)
    parts.module.eval()
    x, y = parts.data.test_set.__getitems__(list(range(len(parts.data.test_set))))
    with torch.no_grad():
        scores = torch.sigmoid(parts.module(x)).numpy()
    return scores, y.numpy(), parts.module.head.thresholds.numpy()


def test_metrics_json_holds_the_multilabel_metrics_of_every_stage(finished):
    _, metrics, stdout = finished
    final = metrics["final"]
    for key in ("test/map", "test/macro_f1", "test/micro_f1", "test/loss", "val/map", "val/macro_f1"):
        assert isinstance(final.get(key), float), f"{key} missing in final: {final}"
    assert metrics["optimized_metric"] == "val/map" and next(iter(final)) == "test/map", final
    for name, stage in metrics["stages"].items():
        assert 0.0 <= stage["val/map"] <= 1.0 and 0.0 <= stage["test/map"] <= 1.0, (name, stage)
    assert "final: test/map" in stdout, stdout


def test_the_thresholds_tuned_on_val_are_exported_and_are_the_ones_the_test_applied(finished, tmp_path):
    from sklearn.metrics import f1_score

    run_dir, metrics, _ = finished
    tensors, meta = _exported(run_dir)
    names = [f"label_{i}" for i in range(6)]
    thresholds = json.loads(meta["thresholds"])
    assert list(thresholds) == names and json.loads(meta["multi_label"]) is True
    assert np.allclose(list(thresholds.values()), tensors["head.thresholds"].numpy(), rtol=0, atol=1e-7)
    assert metrics["test_details"]["thresholds"] == pytest.approx(thresholds)
    assert not np.allclose(tensors["head.thresholds"].numpy(), 0.5), "tuned on val, not the default"
    # eval reloads them with the head and reproduces the run's test metrics
    out = tmp_path / "eval.json"
    printed = run_cli("eval", str(run_dir), "--output", str(out)).stdout
    got = json.loads(out.read_text())
    for key in ("test/map", "test/macro_f1", "test/micro_f1", "test/subset_acc"):
        assert got[key] == pytest.approx(metrics["final"][key], abs=1e-6), key
    assert got["thresholds"] == pytest.approx(thresholds) and "thresholds tuned on the run's validation" in printed
    # F1 recomputed from the test predictions at the saved thresholds, by scikit-learn
    scores, targets, stored = _test_scores(run_dir)
    assert np.array_equal(stored, tensors["head.thresholds"].numpy())
    predicted = (scores >= stored).astype(int)
    macro = f1_score(targets, predicted, average="macro", zero_division=0)
    micro = f1_score(targets, predicted, average="micro", zero_division=0)
    assert macro == pytest.approx(got["test/macro_f1"], abs=1e-6) and micro == pytest.approx(got["test/micro_f1"])
    per_label = metrics["test_details"]["per_label"]
    assert [per_label[n]["support"] for n in names] == targets.sum(0).astype(int).tolist()


def test_eval_of_a_checkpoint_and_a_refusal_of_single_label_data(finished):
    run_dir, _, _ = finished
    ckpt = run_dir / "checkpoints" / "finetune" / "last.ckpt"
    printed = run_cli("eval", str(ckpt)).stdout
    assert "test/map" in printed and "test/macro_f1" in printed, printed
    proc = run_cli("eval", str(run_dir), "data.multi_label=false", check=False)
    assert proc.returncode == 2 and "multi-label" in proc.stderr and "single-label" in proc.stderr, proc.stderr


def test_tensorboard_shows_the_multilabel_scalars_the_ap_figure_and_hparams(finished):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, metrics, _ = finished
    (events,) = (run_dir / "tensorboard").rglob("events.out.tfevents.*")
    acc = EventAccumulator(str(events.parent), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    want = {"train/loss", "val/map", "val/macro_f1", "test/map", "test/ap_label/label_0", "hparams/test_map"}
    assert want <= tags, f"missing {sorted(want - tags)}"
    assert "test/ap_per_label" in acc.Tags()["images"], acc.Tags()["images"]
    assert acc.Scalars("hparams/test_map")[-1].value == pytest.approx(metrics["final"]["test/map"], abs=1e-6)


def test_report_chooses_on_val_map_and_shows_test_map(finished, tmp_path):
    run_dir, _, _ = finished
    out = run_cli("report", str(run_dir), "--out", str(tmp_path / "report")).stdout
    assert "val/map" in out and "test/map" in out, out
    assert (tmp_path / "report" / "summary.png").is_file() and (tmp_path / "report" / "curves.png").is_file()


def test_a_multilabel_sweep_reports_the_best_group_by_val_map(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli("train", "-m", *MULTI_LABEL, "strategy=feature_extraction", "task.threshold=per_label,global",
            "callbacks=none", f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert "test/map" in metrics["final"], metrics["final"]
    modes = {json.loads((sweep / j / "metrics.json").read_text())["test_details"]["threshold_mode"] for j in "01"}
    assert modes == {"per_label", "global"}
    out = run_cli("report", str(sweep)).stdout
    assert "Best by val/map" in out and "its test/map" in out, out


# ---- kill and resume -------------------------------------------------------------------------------------
RESUMABLE = [
    *TWO_STAGES,
    "seed=5",
    "callbacks.checkpoint.last_min_interval_s=0",  # last.ckpt every epoch
    "+callbacks.extra.kill._target_=tests.run.killer.KillAt",
]


def _train(run_dir: Path, kill: str | None = None) -> int:
    env = {"PYTHONPATH": str(REPO)} | ({ENV: kill} if kill else {})
    proc = run_cli("train", *RESUMABLE, f"hydra.run.dir={run_dir}", cwd=run_dir.parent, env=env, check=False)
    return proc.returncode


def _outcome(run_dir: Path) -> tuple[dict, dict, dict, dict[str, torch.Tensor]]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    stages = {name: {k: v for k, v in row.items() if k != "seconds"} for name, row in metrics["stages"].items()}
    return metrics, stages, metrics["test_details"], load_file(run_dir / "model.safetensors")


def test_a_killed_multilabel_run_resumes_to_the_same_metrics_and_thresholds(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert _train(full) == 0
    assert _train(killed, "batch:finetune:1:0") == -9  # SIGKILL in the 2nd epoch of the finetune stage
    assert not (killed / "metrics.json").exists() and ENV not in os.environ
    proc = run_cli("resume", str(killed), cwd=tmp_path, env={"PYTHONPATH": str(REPO)}, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resume: continuing at step" in (killed / "train.log").read_text()
    full_metrics, full_stages, full_details, full_weights = _outcome(full)
    metrics, stages, details, weights = _outcome(killed)
    assert metrics["final"] == full_metrics["final"]
    assert stages == full_stages
    assert metrics["epochs"] == full_metrics["epochs"]
    assert details == full_details, "per-label AP, F1 and thresholds of the test"
    assert weights.keys() == full_weights.keys() and "head.thresholds" in weights
    assert all(torch.equal(weights[k], full_weights[k]) for k in weights), "weights or thresholds differ"
