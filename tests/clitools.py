"""Run the real ``transferlab`` command line in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Small, fast settings that keep the real pipeline (real weights, real Lightning, real Hydra). The tests name the
# strategy whose stages they address (lp_ft: probe → finetune); the default strategy=auto has its own tests.
FAST = [
    "strategy=lp_ft",
    "data.image_size=32",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.enable_progress_bar=false",
]
#: FAST without the strategy: for configs that choose their own (experiment=…, whose strategy a command-line
#: strategy=… would replace).
FAST_OWN_STRATEGY = [o for o in FAST if not o.startswith("strategy=")]


REPO = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str,
    cwd: Path | None = None,
    check: bool = True,
    timeout: int = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "transferlab.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"transferlab {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def build_parts(cfg):
    """``(module, data, plan)`` of a composed config, through the one assembly every command uses."""
    from transferlab.run.assembly import assemble
    from transferlab.run.spec import parse_config

    parts = assemble(parse_config(cfg))
    return parts.module, parts.data, parts.plan


def stop_before_hydra(monkeypatch, tmp_path: Path) -> None:
    """In-process ``transferlab train`` stops where Hydra's app would start: a case that slips through fails.

    Claimed run dirs land under ``tmp_path/outputs``.
    """
    import hydra

    def app_factory(*args, **kwargs):
        def decorate(task):
            def slipped() -> None:
                raise AssertionError("slipped through preflight: the Hydra app would have started")

            return slipped

        return decorate

    monkeypatch.setattr(hydra, "main", app_factory)
    monkeypatch.setenv("TRANSFERLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
