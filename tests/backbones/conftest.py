"""Shared fixtures of the backbone tests: a reference backbone and writers of transferlab's file formats.

Helpers are handed out as fixtures (not imported) so the tests work under any pytest import mode.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from transferlab.backbones import create_backbone
from transferlab.backbones.module import ModelBackbone

ARCH = "tv:resnet18"


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP spin-waiting makes these tests 3-4x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def resnet18() -> ModelBackbone:
    """A random-init tv:resnet18 whose tensors the loaded copies are compared with."""
    torch.manual_seed(0)
    return create_backbone(ARCH)


def _head_tensors(num_features: int, num_classes: int = 3) -> dict[str, torch.Tensor]:
    return {"head.weight": torch.randn(num_classes, num_features), "head.bias": torch.zeros(num_classes)}


def _write_export(run_dir: Path, backbone: ModelBackbone, arch: str | None = ARCH) -> Path:
    """``<run_dir>/model.safetensors`` as transferlab's export writes it: backbone./head. keys + metadata."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"backbone.{k}": v.contiguous() for k, v in backbone.state_dict().items()}
    tensors |= _head_tensors(backbone.num_features)
    meta = {"num_classes": "3", "config": json.dumps({"backbone": {"name": arch}}), "format": "transferlab.model.v1"}
    if arch is not None:
        meta["backbone_name"] = arch
    path = run_dir / "model.safetensors"
    save_file(tensors, str(path), metadata=meta)
    return path


def _write_lightning_ckpt(path: Path, backbone: ModelBackbone, arch: str | None = ARCH) -> Path:
    """A Lightning-style checkpoint as transferlab's TransferModule saves it (plain-dict hyper_parameters)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {f"backbone.{k}": v for k, v in backbone.state_dict().items()} | _head_tensors(backbone.num_features)
    hparams = {"num_classes": 3, "class_names": ["a", "b", "c"], "config": {"seed": 0}}
    if arch is not None:
        hparams["backbone_name"] = arch
    ckpt = {
        "epoch": 2,
        "global_step": 30,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": state,
        "hyper_parameters": hparams,
        "optimizer_states": [],
        "lr_schedulers": [],
    }
    torch.save(ckpt, path)
    return path


def _assert_same_tensors(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys(), f"state dict keys differ: {sorted(set(sa) ^ set(sb))[:5]}"
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"tensor {k} differs after reloading"


@pytest.fixture
def write_export():
    return _write_export


@pytest.fixture
def write_lightning_ckpt():
    return _write_lightning_ckpt


@pytest.fixture
def assert_same_tensors():
    return _assert_same_tensors
