"""Fixtures of the deploy tests: a small photo folder and one real run trained on it (once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.clitools import FAST, run_cli

CLASSES = ("red", "green", "blue")


def write_photos(root: Path, per_class: int = 20, seed: int = 0) -> Path:
    """``root/<colour>/<n>.{png,jpg}``: noisy images of varied sizes whose dominant channel is the class.

    The noise is strong enough that a tiny model trained for two batches gets some wrong, so predictions are
    compared on real mistakes, not only on a perfect score.
    """
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = 20 + (i * 7) % 23, 24 + (i * 5) % 19
            pixels = rng.normal(90, 45, size=(h, w, 3))
            pixels[..., c] += 40
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            image.save(folder / f"{name}_{i}.{'png' if i % 2 else 'jpg'}")
    return root


@pytest.fixture(scope="session")
def folder_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A finished ``small_cnn`` run on a photo folder: ``(run dir, metrics.json)``."""
    base = tmp_path_factory.mktemp("folder_run")
    photos = write_photos(base / "photos")
    run_dir = base / "run"
    run_cli(
        "train", *FAST, "data=image_folder", f"data.root={photos}", "backbone=small_cnn", "backbone.weights=null",
        "strategy=finetune", "+strategy.max_stage_epochs=3", "data.batch_size=16",
        f"hydra.run.dir={run_dir}", cwd=base,
    )  # fmt: skip
    return run_dir, json.loads((run_dir / "metrics.json").read_text())
