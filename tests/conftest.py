"""Shared fixtures: a tiny backbone that honours the Backbone contract, for fast unit tests."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from transferlab.backbones.base import DataConfig, LayerGroup


class TinyBackbone(nn.Module):
    """Three conv+BN groups and pooled features: small enough for unit tests in milliseconds."""

    name = "tiny"
    num_features = 16
    data_config = DataConfig(input_size=16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block1 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Dropout(0.5))
        self.block2 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.block2(self.block1(self.stem(x))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)

    def layer_groups(self) -> list[LayerGroup]:
        names = [n for n, _ in self.named_parameters()]
        return [LayerGroup(g, tuple(n for n in names if n.startswith(g + "."))) for g in ("stem", "block1", "block2")]


@pytest.fixture
def tiny_backbone() -> TinyBackbone:
    torch.manual_seed(0)
    return TinyBackbone()


@pytest.fixture(scope="session", autouse=True)
def _feature_cache_outside_the_checkout(tmp_path_factory):
    """Runs started by tests (in process and in subprocesses) keep cached features in a temp dir."""
    if "TRANSFERLAB_FEATURE_CACHE" not in os.environ:
        os.environ["TRANSFERLAB_FEATURE_CACHE"] = str(tmp_path_factory.mktemp("feature_cache"))
