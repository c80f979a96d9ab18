"""Fast real runs shared by the regularizer tests: packaged weights, 32 px digits, 3 batches, 2 epochs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from transferlab.cli.common import compose_config
from transferlab.run.engine import run

FAST = [
    "data.image_size=32",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "callbacks=none",
    "logger=none",
    "strategy=finetune",
    "strategy.stages.finetune.epochs=2",
    "strategy.stages.finetune.warmup_epochs=0",
]


def fast_run(run_dir: Path, *overrides: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Run the engine with :data:`FAST` plus ``overrides``; return metrics.json content and exported tensors."""
    metrics = run(compose_config([*FAST, *overrides]), run_dir)
    return metrics, load_file(str(run_dir / "model.safetensors"))


def comparable(metrics: dict[str, Any]) -> dict[str, Any]:
    """metrics.json without what legitimately differs between identical runs (paths, wall-clock times)."""
    stages = {name: {k: v for k, v in row.items() if k != "seconds"} for name, row in metrics["stages"].items()}
    return {"final": metrics["final"], "stages": stages, "epochs": metrics["epochs"]}
