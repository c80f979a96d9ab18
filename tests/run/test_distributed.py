"""DDP through Lightning under Hydra: 2 CPU processes (gloo), one run dir, ranks in sync after unfreezing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.clitools import REPO, run_cli
from transferlab.errors import ConfigError
from transferlab.run.distributed import (
    check_ddp_launch,
    is_script_launched_ddp,
    state_digest,
    world_size,
)

# gradual_unfreeze on small_cnn: 5 plan steps, each unfreezing one more layer group
DDP_JOB = [
    "trainer=ddp_cpu",
    "backbone=small_cnn",
    "backbone.weights=null",
    "data=synthetic",
    "strategy=gradual_unfreeze",
    "strategy.stages.unfreeze.epochs=4",
    "trainer.enable_progress_bar=false",
]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, Path, dict, str]:
    tmp = tmp_path_factory.mktemp("ddp")
    out_root, ranks_dir = tmp / "outputs", tmp / "ranks"
    proc = run_cli(
        "train",
        *DDP_JOB,
        f"paths.output_root={out_root}",
        "+callbacks.extra.rank_weights._target_=tests.run.ddp_probe.SaveRankWeights",
        f"+callbacks.extra.rank_weights.out_dir={ranks_dir}",
        cwd=tmp,
        env={"PYTHONPATH": str(REPO)},  # the ranks import the test-only callback from tests/
    )
    runs = list((out_root / "train" / "runs").iterdir())
    assert len(runs) == 1, f"DDP made {len(runs)} run dirs: {runs}"
    return runs[0], ranks_dir, json.loads((runs[0] / "metrics.json").read_text()), proc.stdout + proc.stderr


def _wait_for(paths: list[Path], seconds: float = 30.0) -> None:
    # rank 1 exits on its own after rank 0; its last file may land a moment later
    deadline = time.time() + seconds
    while time.time() < deadline and not all(p.exists() for p in paths):
        time.sleep(0.2)


def test_ddp_makes_one_run_dir_one_event_stream_and_one_checkpoint_set(ddp_run):
    run_dir, _, metrics, _ = ddp_run
    assert metrics["ddp"]["world_size"] == 2
    assert len(list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))) == 1
    steps = ["unfreeze", "unfreeze.step1", "unfreeze.step2", "unfreeze.step3"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == steps
    for step in steps:
        assert len(list((run_dir / "checkpoints" / step).glob("last*.ckpt"))) == 1
    # rank 0 alone writes .hydra/ and the outputs; rank 1 keeps its own log of warnings and errors
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "model.safetensors").is_file()
    assert (run_dir / "rank1.log").is_file()
    assert "plan:" not in (run_dir / "rank1.log").read_text()


def test_ranks_hold_identical_weights_after_every_unfreeze_step(ddp_run):
    _, ranks_dir, metrics, _ = ddp_run
    steps = list(metrics["ddp"]["weight_sha256_by_step"])
    assert len(steps) == 4
    files = [ranks_dir / f"rank{r}_{s}.safetensors" for s in steps for r in (0, 1)]
    _wait_for(files)
    trainable = []
    for step in steps:
        zero, one = (load_file(ranks_dir / f"rank{r}_{step}.safetensors") for r in (0, 1))
        assert zero.keys() == one.keys()
        different = [k for k in zero if not torch.equal(zero[k], one[k])]
        assert not different, f"step {step}: ranks differ in {different[:5]}"
        with safe_open(ranks_dir / f"rank0_{step}.safetensors", "pt") as f:
            trainable.append(int(f.metadata()["trainable"]))
        # the engine's own check saw the same thing
        assert len(set(metrics["ddp"]["weight_sha256_by_step"][step])) == 1
    assert trainable == sorted(trainable) and trainable[0] < trainable[-1], trainable  # layers were unfrozen
    # and the weights did train between steps
    first, last = (load_file(ranks_dir / f"rank0_{s}.safetensors") for s in (steps[0], steps[-1]))
    assert any(not torch.equal(first[k], last[k]) for k in first if k.startswith("backbone."))


def test_ddp_in_a_local_multirun_is_refused_before_training(tmp_path):
    proc = run_cli(
        "train", "-m", *DDP_JOB, f"hydra.sweep.dir={tmp_path / 'sweep'}", "seed=0,1", cwd=tmp_path, check=False
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "inside a multirun" in proc.stderr and "hydra/launcher=slurm" in proc.stderr
    for job in ("0", "1"):
        failure = json.loads((tmp_path / "sweep" / job / "failure.json").read_text())
        assert failure["error_type"] == "ConfigError"
        assert not (tmp_path / "sweep" / job / "tensorboard").exists()  # nothing trained


def test_world_size_and_launch_detection():
    assert world_size({"devices": 2, "accelerator": "cpu"}) == 2
    assert world_size({"devices": [0, 1, 2], "num_nodes": 2}) == 6
    assert world_size({"devices": "4"}) == 4
    assert is_script_launched_ddp({"strategy": "ddp", "devices": 2})
    assert not is_script_launched_ddp({"strategy": "ddp", "devices": 1})
    assert not is_script_launched_ddp({"strategy": "ddp_spawn", "devices": 2})
    with pytest.raises(ConfigError, match=r"trainer\.strategy=ddp"):
        check_ddp_launch({"trainer": {"strategy": "ddp", "devices": 2}}, multirun=True)
    check_ddp_launch({"trainer": {"strategy": "ddp", "devices": 2}}, multirun=False)


def test_state_digest_sees_every_bit():
    state = {"w": torch.zeros(3), "n": torch.tensor(5)}
    base = state_digest(state)
    assert state_digest({"n": torch.tensor(5), "w": torch.zeros(3)}) == base  # order-independent
    flipped = torch.zeros(3)
    flipped[1] = torch.finfo(torch.float32).tiny  # the smallest change
    assert state_digest({"w": flipped, "n": torch.tensor(5)}) != base
    assert state_digest({"w": torch.zeros(3, 1), "n": torch.tensor(5)}) != base  # shape counts
