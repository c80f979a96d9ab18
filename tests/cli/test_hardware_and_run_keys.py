"""Hardware that is asked for and absent, and bad top-level run keys: config errors in validate and train alike."""

from __future__ import annotations

import pytest
import torch

from tests.clitools import run_cli
from transferlab.cli.main import main

SMALL = ["backbone=small_cnn", "backbone.weights=null", "data=synthetic"]
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: trainer=gpu is valid here")


@NO_GPU
def test_trainer_gpu_without_a_gpu_is_one_paragraph_in_validate(capsys):
    with pytest.raises(SystemExit) as info:
        main(["validate", *SMALL, "trainer=gpu"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err, err
    assert "trainer.accelerator=gpu: this machine has no CUDA GPU" in err and "Fix: trainer=cpu" in err, err


@NO_GPU
def test_trainer_gpu_without_a_gpu_is_one_paragraph_in_train_before_any_dir(tmp_path):
    proc = run_cli("train", *SMALL, "trainer=gpu", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("transferlab: error: trainer.accelerator=gpu: this machine has no CUDA GPU")
    assert not (tmp_path / "run").exists(), "train refuses before any run dir is made"


@pytest.mark.parametrize(
    ("override", "needle"),
    [("seed=abc", "seed='abc': expected an integer"), ("+sed=1", "sed: unknown key; did you mean 'seed'?")],
)
def test_a_bad_top_level_key_is_one_paragraph_before_any_dir(override, needle, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:  # in process: train's preflight refuses before Hydra starts
        main(["train", *SMALL, override, f"hydra.run.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith(f"transferlab: error: {needle}"), err
    assert not (tmp_path / "run").exists()
