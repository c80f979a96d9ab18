"""Fixtures of the data tests: a small DataConfig and tiny PNG class-folder trees."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferlab.backbones.base import DataConfig

TreeSpec = Mapping[str, int]  # class name → number of images


def write_images(folder: Path, n: int, color: int, size: int = 12) -> None:
    """Write ``n`` tiny RGB PNGs whose mean colour depends on ``color`` (so classes differ)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(color)
    for i in range(n):
        pixels = np.clip(rng.normal(color * 40, 10, size=(size, size + 2, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i}.png")


@pytest.fixture
def data_config() -> DataConfig:
    """Small input size keeps every resize in the tests cheap."""
    return DataConfig(input_size=16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.875)


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[..., Path]:
    """Build ``tmp_path/<name>/[split/]<class>/img_i.png`` from ``{split: {class: n}}`` or ``{class: n}``."""

    def make(spec: Mapping[str, TreeSpec] | TreeSpec, name: str = "images") -> Path:
        root = tmp_path / name
        root.mkdir()
        for key, value in spec.items():
            if isinstance(value, Mapping):
                for c, (cls, n) in enumerate(value.items()):
                    write_images(root / key / cls, n, color=c)
            else:
                write_images(root / key, value, color=list(spec).index(key))
        return root

    return make
