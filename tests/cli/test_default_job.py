"""Acceptance (slow): the embedded default job reaches ≥ 0.95 test accuracy on digits on a CPU."""

import json
import time

import pytest

from tests.clitools import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_default_train_reaches_095_test_accuracy(tmp_path):
    run_dir = tmp_path / "run"
    start = time.perf_counter()
    proc = run_cli("train", "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    seconds = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"default job: {seconds:.0f} s, test/acc {metrics['final']['test/acc']:.4f}")
    assert metrics["backbone"] == "efficientnet_lite0" and metrics["strategy"] == "auto", metrics
    assert metrics["final"]["test/acc"] >= 0.95, proc.stdout[-2000:]
    # ~117 training digits per class: strategy=auto fine-tunes every layer from the start, and says why
    choice = metrics["strategy_choice"]
    assert choice["recipe"] == "finetune" and list(metrics["stages"]) == ["finetune"], choice
    assert "≥ many_shots=50" in choice["reasons"][0] and choice["inputs"]["classes"] == 10
    assert "strategy=auto chose finetune" in proc.stdout + proc.stderr
