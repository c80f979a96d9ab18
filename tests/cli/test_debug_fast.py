"""``debug=fast`` smoke-runs every shipped experiment: 2 epochs per stage at most, 2 batches, no cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clitools import REPO, run_cli

EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
# experiments that start from another run's weights get a debug=fast pretraining run's
NEEDS_WEIGHTS = {"transfer_digits59": "pretrain_digits04"}

pytestmark = pytest.mark.slow  # one real run per shipped experiment (~1 min in all)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("debug_fast")
    done: dict[str, Path] = {}
    for name in sorted(EXPERIMENTS, key=lambda n: n in NEEDS_WEIGHTS):  # pretraining first
        extra = [f"backbone.weights={done[NEEDS_WEIGHTS[name]]}"] if name in NEEDS_WEIGHTS else []
        run_dir = tmp / name
        run_cli("train", f"experiment={name}", "debug=fast", *extra, f"hydra.run.dir={run_dir}", cwd=tmp)
        done[name] = run_dir
    return done


def test_there_are_experiments_to_smoke():
    assert {"digits_efficientnet_lite0_lp_ft", "multitask_digits", *NEEDS_WEIGHTS, *NEEDS_WEIGHTS.values()} <= set(
        EXPERIMENTS
    )


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_shipped_experiment_smoke_runs_with_debug_fast(runs, name):
    metrics = json.loads((runs[name] / "metrics.json").read_text())
    assert all(stage["epochs"] <= 2 for stage in metrics["stages"].values()), metrics["stages"]
    assert 0.0 <= metrics["final"]["test/acc"] <= 1.0
    assert not (runs[name] / "checkpoints").exists(), "debug=fast writes no checkpoints"
