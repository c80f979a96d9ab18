"""``small_cnn``: a compact conv net for small images (digits, 32 px) — fast pretraining and studies on a CPU.

Transfer-Learning-Library and DANN-style digit benchmarks use small LeNet-like nets for the same reason: a
source-task pretraining and a multi-seed transfer study then take minutes, not hours, on two CPU cores.
"""

from __future__ import annotations

import torch
from torch import nn

from transferlab.backbones.base import DataConfig
from transferlab.backbones.module import ModelBackbone, group_names, params_under

NAME = "small_cnn"
WIDTHS = (32, 64, 128, 256)


def _block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """Stem + three conv blocks (BatchNorm, ReLU, max-pool) and global average pooling → 256 features."""

    def __init__(self) -> None:
        super().__init__()
        w = WIDTHS
        self.stem = _block(3, w[0], pool=False)
        self.block1 = _block(w[0], w[1], pool=True)
        self.block2 = _block(w[1], w[2], pool=True)
        self.block3 = _block(w[2], w[3], pool=False)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, 256)`` of images ``(B, 3, H, W)``."""
        return self.pool(self.block3(self.block2(self.block1(self.stem(x))))).flatten(1)


def create_small_cnn() -> ModelBackbone:
    """A randomly initialised ``small_cnn`` backbone; groups ``stem``, ``group1``…``group3``."""
    model = SmallCNN()
    parts = ("stem", "block1", "block2", "block3")
    names = group_names(len(parts), has_top=False)
    groups = [(g, params_under(model, [p])) for g, p in zip(names, parts, strict=True)]
    config = DataConfig(input_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bilinear")
    return ModelBackbone(NAME, model, WIDTHS[-1], config, groups)
