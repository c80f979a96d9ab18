"""Synthetic job and sweep dirs laid out as Hydra and ``transferlab train`` write them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml


def write_job(
    job_dir: Path,
    overrides: list[str],
    final: dict[str, float] | None = None,
    seconds: float | None = 1.0,
    epochs: list[dict[str, Any]] | None = None,
    failure: dict[str, Any] | None = None,
    hydra: dict[str, Any] | None = None,
) -> Path:
    """A job dir: ``.hydra/overrides.yaml``, and ``metrics.json`` when ``final`` is given, ``failure.json`` when
    ``failure`` is given (neither: an unfinished job)."""
    (job_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if hydra is not None:
        (job_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": hydra}))
    if final is not None:
        metrics: dict[str, Any] = {"run_dir": str(job_dir), "final": final, "stages": {}, "epochs": epochs or []}
        if seconds is not None:
            metrics["seconds"] = seconds
        (job_dir / "metrics.json").write_text(json.dumps(metrics))
    if failure is not None:
        record = {"status": "failed", "traceback": "Traceback ...", "overrides": overrides, **failure}
        (job_dir / "failure.json").write_text(json.dumps(record))
    return job_dir


def write_multirun(sweep_dir: Path, task: list[str], sweeper: dict[str, Any] | None = None) -> Path:
    """A sweep dir's ``multirun.yaml`` with the sweep's command-line overrides."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    sweeper = sweeper or {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "params": None}
    config = {"hydra": {"mode": "MULTIRUN", "sweeper": sweeper, "overrides": {"task": task}}, "seed": 0}
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump(config))
    return sweep_dir


def curve_rows(values: list[float], stages: list[str]) -> list[dict[str, Any]]:
    """``metrics.json`` epoch rows with ``val/acc`` = ``values`` and the given stage per epoch."""
    return [
        {"epoch": i, "stage": s, "step": s, "val/acc": v} for i, (v, s) in enumerate(zip(values, stages, strict=True))
    ]


# 2 strategies × 3 shot budgets × 2 seeds; test/acc = ACC[(strategy, shots)][seed]
ACC = {
    ("a", "5"): [0.50, 0.60],
    ("a", "20"): [0.70, 0.74],
    ("a", "null"): [0.90, 0.86],
    ("b", "5"): [0.40, 0.46],
    ("b", "20"): [0.61, 0.65],
    ("b", "null"): [0.95, 0.97],
}


@pytest.fixture
def grid_sweep(tmp_path) -> Path:
    """A finished basic sweep ``strategy=a,b data.shots_per_class=5,20,null seed=0,1`` (12 jobs)."""
    sweep = write_multirun(tmp_path / "sweep", ["strategy=a,b", "data.shots_per_class=5,20,null", "seed=0,1", "x=1"])
    num = 0
    for strategy in ("a", "b"):
        for shots in ("5", "20", "null"):
            for seed in (0, 1):
                acc = ACC[(strategy, shots)][seed]
                write_job(
                    sweep / str(num),
                    [f"strategy={strategy}", f"data.shots_per_class={shots}", f"seed={seed}", "x=1"],
                    final={"test/loss": 1.0 - acc, "test/acc": acc, "val/acc": acc - 0.01},
                    seconds=10.0 + num,
                    epochs=curve_rows([acc / 2, acc - 0.1, acc], ["probe", "finetune", "finetune"]),
                )
                num += 1
    return sweep
