"""A NaN/infinite training loss stops the run within a step, with a clear error, saving nothing from it."""

from __future__ import annotations

import json

import pytest
import torch

from tests.clitools import FAST, run_cli
from transferlab.errors import TrainingDivergedError
from transferlab.model.divergence import FiniteLossGuard


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


def test_guard_raises_at_once_on_cpu():
    guard = FiniteLossGuard()
    guard.check(torch.tensor(1.5), lambda: "here")
    with pytest.raises(TrainingDivergedError, match="became inf at here"):
        guard.check(torch.tensor(float("inf")), lambda: "here")


def test_deferred_flags_are_read_every_interval_and_at_flush_naming_the_first_bad_step():
    # What a GPU step does: record a device flag, read the flags together later (no sync per step).
    guard = FiniteLossGuard(interval=4, defer=True)
    for i in range(3):
        guard.check(torch.tensor(float("nan") if i else 1.0), lambda i=i: f"batch {i + 1}")
    assert len(guard._pending) == 3, "nothing is read before the interval"
    with pytest.raises(TrainingDivergedError, match="NaN or infinite at batch 2;"):
        guard.flush()
    guard.flush()  # read once
    for _ in range(4):
        guard.check(torch.tensor(1.0), lambda: "never formatted")
    assert guard._pending == [], "a full interval is read at once"
    for _ in range(3):
        guard.check(torch.tensor(1.0), lambda: "ok")
    with pytest.raises(TrainingDivergedError, match="at batch 4;"):
        guard.check(torch.tensor(float("inf")), lambda: "batch 4")  # the 4th flag completes the interval
