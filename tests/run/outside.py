"""Start ``transferlab`` commands as a user's shell would, and signal or kill them from outside."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.clitools import FAST, REPO
from tests.run.killer import SLOW_ENV

# A 3-stage run (probe → top two groups → all), 2 epochs per stage, on tiny synthetic data.
THREE_STAGES = [
    *FAST,
    "backbone=small_cnn",
    "backbone.weights=null",
    "data=synthetic",
    "strategy=lp_top_ft",
    "strategy.stages.top.epochs=2",
    "strategy.stages.all.epochs=2",
    "seed=5",
]
# The same, paced: every batch sleeps (tests.run.killer.Slow, active only with $TRANSFERLAB_TEST_SLOW) so that a
# signal lands inside a chosen stage.
JOB = [*THREE_STAGES, "+callbacks.extra.slow._target_=tests.run.killer.Slow"]
EVERY_EPOCH = ["callbacks.checkpoint.last_min_interval_s=0"]


def start(*args: str, cwd: Path, slow: float = 0.0, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """``transferlab <args>`` in its own process group (as a shell job), output captured."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO), **(extra_env or {})}
    if slow:
        env[SLOW_ENV] = str(slow)
    return subprocess.Popen(
        [sys.executable, "-m", "transferlab.cli.main", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    """Wait until ``path`` exists (fails when the process ends first or the time is up)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {path} appeared\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def kill_group(proc: subprocess.Popen) -> int:
    """SIGKILL the process group (the run and any workers), as ``kill -9 -<pgid>`` would."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    return proc.returncode


def finish(proc: subprocess.Popen, timeout: float = 600.0) -> tuple[int, str, str]:
    """Wait for the process; its exit status, stdout and stderr."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def outcome(run_dir: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """``metrics.json`` without what may differ between equal runs (timings, the dir), and the exported weights."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.pop("seconds")
    metrics.pop("run_dir")
    for row in metrics["stages"].values():
        row.pop("seconds")
    return metrics, load_file(run_dir / "model.safetensors")


def assert_same_run(run_dir: Path, reference: Path) -> None:
    """Every field of ``metrics.json`` but timings, and every exported tensor, equal the reference run's."""
    metrics, weights = outcome(run_dir)
    expected, expected_weights = outcome(reference)
    assert metrics == expected, _diff(metrics, expected)
    assert weights.keys() == expected_weights.keys()
    changed = [k for k in weights if not torch.equal(weights[k], expected_weights[k])]
    assert not changed, f"weights differ from the uninterrupted run: {changed[:5]}"


def _diff(got: dict, want: dict) -> str:
    keys = sorted(set(got) | set(want))
    lines = [f"{k}: {got.get(k)!r} != {want.get(k)!r}" for k in keys if got.get(k) != want.get(k)]
    return "metrics.json differs from the uninterrupted run:\n" + "\n".join(line[:600] for line in lines)
