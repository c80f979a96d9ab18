"""A NaN/infinite training loss stops the run within a step, with a clear error, saving nothing from it."""

from __future__ import annotations

import json

import pytest
import torch

from tests.clitools import FAST, run_cli
from transferlab.errors import TrainingDivergedError
from transferlab.training.divergence import FiniteLossGuard


def test_a_diverging_run_stops_within_a_step_and_saves_nothing(tmp_path):
    run_dir = tmp_path / "run"
    # learning rates of 1e30: the first update blows the weights up, the second step's loss is not finite
    proc = run_cli(
        "train", *FAST, "backbone=small_cnn", "backbone.weights=null", "data=synthetic", "strategy=finetune",
        "strategy.stages.finetune.lr_head=1e30", "strategy.stages.finetune.lr_backbone=1e30",
        f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "training loss became NaN or infinite at stage 'finetune', epoch 1, batch 2" in proc.stderr
    assert "Fix: lower the stage's learning rates" in proc.stderr and "Traceback" not in proc.stderr
    assert not (run_dir / "checkpoints").exists(), "nothing from the diverged step may be saved"
    assert not (run_dir / "model.safetensors").exists() and not (run_dir / "metrics.json").exists()
    assert json.loads((run_dir / "failure.json").read_text())["error_type"] == "TrainingDivergedError"


def test_guard_raises_at_once_on_cpu_and_at_the_next_read_for_device_flags():
    guard = FiniteLossGuard()
    guard.check(torch.tensor(1.5), "here")
    with pytest.raises(TrainingDivergedError, match="became inf at here"):
        guard.check(torch.tensor(float("inf")), "here")
    guard._pending, guard._where = torch.tensor(False), "stage 'x', epoch 1, batch 7"  # what a GPU step leaves
    with pytest.raises(TrainingDivergedError, match="batch 7"):
        guard.flush()
    guard.flush()  # read once
