"""Hardware that is asked for and absent, and bad top-level run keys: config errors in validate and train alike."""

from __future__ import annotations

import pytest
import torch

from tests.clitools import run_cli

SMALL = ["backbone=small_cnn", "backbone.weights=null", "data=synthetic"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: trainer=gpu is valid here")
@pytest.mark.parametrize("command", ["validate", "train"])
def test_trainer_gpu_without_a_gpu_is_one_paragraph_and_exit_2(command, tmp_path):
    proc = run_cli(command, *SMALL, "trainer=gpu", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "trainer.accelerator=gpu: this machine has no CUDA GPU" in proc.stderr and "Fix: trainer=cpu" in proc.stderr
    assert not (tmp_path / "run").exists(), "train refuses before any run dir is made"


@pytest.mark.parametrize(
    ("override", "needle"),
    [("seed=abc", "seed='abc': expected an integer"), ("+sed=1", "sed: unknown key; did you mean 'seed'?")],
)
def test_a_bad_top_level_key_is_one_paragraph_before_any_dir(override, needle, tmp_path):
    proc = run_cli("train", *SMALL, override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"transferlab: error: {needle}"), proc.stderr
    assert not (tmp_path / "run").exists()
