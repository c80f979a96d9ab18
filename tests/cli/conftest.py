"""Fixtures for CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clitools import FAST, run_cli


@pytest.fixture
def train_run(tmp_path):
    """Run ``transferlab train`` into a temp run dir and return (run_dir, metrics)."""

    def _run(*overrides: str, fast: bool = True) -> tuple[Path, dict]:
        run_dir = tmp_path / "run"
        run_cli("train", *(FAST if fast else []), *overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path)
        return run_dir, json.loads((run_dir / "metrics.json").read_text())

    return _run
