"""The source classifier LEEP and NCE read, or the reason there is none."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from transferlab.run.source_head import source_head
from transferlab.run.spec import BackboneChoice


def _file(tmp_path: Path, tensors: dict[str, torch.Tensor]) -> str:
    path = tmp_path / "model.safetensors"
    save_file({"backbone.model.stem.0.weight": torch.zeros(2, 3, 3, 3), **tensors}, str(path))
    return str(path)


def test_packaged_weights_bring_the_imagenet_head() -> None:
    head = source_head(BackboneChoice("efficientnet_lite0", "package"), 1280)
    assert head.available and head.weight.shape == (1000, 1280) and head.bias.shape == (1000,), head.origin
    probabilities = head.probabilities(torch.randn(4, 1280))
    assert torch.allclose(probabilities.sum(1), torch.ones(4, dtype=torch.float64))


def test_an_export_head_is_read_and_applied(tmp_path: Path) -> None:
    weight, bias = torch.randn(5, 8), torch.randn(5)
    head = source_head(BackboneChoice("small_cnn", _file(tmp_path, {"head.weight": weight, "head.bias": bias})), 8)
    assert head.available and "5 classes" in head.origin, head.origin
    x = torch.randn(3, 8)
    expected = torch.softmax(x.double() @ weight.double().T + bias.double(), 1)
    assert torch.allclose(head.probabilities(x), expected)


@pytest.mark.parametrize(
    ("tensors", "says"),
    [
        ({}, "holds no classifier"),
        ({"head.weight": torch.randn(5, 7), "head.bias": torch.randn(5)}, "holds no classifier on the 8 features"),
        ({"head.weight": torch.randn(5, 8), "head.thresholds": torch.zeros(5)}, "multi-label"),
        ({"heads.a.weight": torch.randn(5, 8)}, "multi-task"),
    ],
)
def test_files_without_a_softmax_head_say_why(tmp_path: Path, tensors: dict, says: str) -> None:
    head = source_head(BackboneChoice("small_cnn", _file(tmp_path, tensors)), 8)
    assert not head.available and says in head.origin, head.origin


@pytest.mark.parametrize(("weights", "says"), [(None, "random init"), ("hub", "hub weights")])
def test_random_and_hub_weights_have_none(weights: str | None, says: str) -> None:
    head = source_head(BackboneChoice("small_cnn", weights), 256)
    assert not head.available and says in head.origin, head.origin
