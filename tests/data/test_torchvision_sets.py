"""torchvision data sets: offline errors with the real constructors, download failure, a fake MNIST copy."""

from __future__ import annotations

import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.utils

from transferlab.data import TORCHVISION_SETS, TorchvisionDataModule, build_data
from transferlab.errors import ConfigError, DataError


def tv(dataset: str, root: Path, data_config, **cfg) -> TorchvisionDataModule:
    return build_data(
        {"name": "torchvision", "dataset": dataset, "root": str(root), "num_workers": 0, **cfg}, data_config
    )


@pytest.mark.parametrize("dataset", ["CIFAR10", "MNIST", "FashionMNIST", "Flowers102", "OxfordIIITPet"])
def test_missing_files_offline_say_what_to_do(tmp_path, data_config, dataset):
    dm = tv(dataset, tmp_path, data_config)
    dm.prepare_data()  # download=false: nothing to do, and no network touched
    with pytest.raises(DataError) as err:
        dm.setup()
    msg = str(err.value)
    for needle in (
        f"data set {dataset} not found under {tmp_path}",
        "data.download=true",
        "data.root",
        "data=image_folder",
    ):
        assert needle in msg, f"offline error should contain {needle!r}: {msg}"


@pytest.mark.parametrize("dataset", ["CIFAR10", "MNIST"])
def test_download_failure_is_a_data_error(tmp_path, data_config, monkeypatch, dataset):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", offline)
    dm = tv(dataset, tmp_path, data_config, download=True)
    with pytest.raises(DataError) as err:
        dm.prepare_data()
    msg = str(err.value)
    for needle in (dataset, "download", "failed", "data.root", "data=image_folder"):
        assert needle in msg, f"download error should contain {needle!r}: {msg}"
    assert "unreachable" in msg or "Error downloading" in msg, f"the URL failure should be named: {msg}"


def test_unknown_dataset_suggests_a_name(tmp_path, data_config):
    with pytest.raises(ConfigError) as err:
        tv("CIFAR1O", tmp_path, data_config)
    assert "data.dataset" in str(err.value) and "CIFAR10" in str(err.value), f"unclear: {err.value}"


def test_name_is_case_insensitive_and_classes_known_before_setup(tmp_path, data_config):
    dm = tv("cifar100", tmp_path, data_config)
    assert dm.dataset == "CIFAR100" and dm.num_classes == 100, f"got {dm.dataset}, {dm.num_classes} classes"
    assert set(TORCHVISION_SETS) >= {
        "CIFAR10",
        "CIFAR100",
        "MNIST",
        "FashionMNIST",
        "Flowers102",
        "OxfordIIITPet",
    }


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX file (MNIST's raw format): magic 0x08 = uint8, then big-endian dims, then data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_fake_mnist_copy_loads_as_rgb(tmp_path, data_config):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, size=(n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    dm = tv("MNIST", tmp_path, data_config, batch_size=8, shots_per_class=2)
    dm.prepare_data()
    dm.setup()
    sizes = (len(dm.train_set), len(dm.val_set), len(dm.test_set))
    assert sizes == (20, 10, 10), f"3 per class, val 1 per class carved, 2 shots kept; test 10: got {sizes}"
    assert dm.class_names[0] == "0 - zero", f"class names should come from the data set: {dm.class_names[:2]}"
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 16, 16) and x.dtype == torch.float32, f"grey MNIST should become RGB: {x.shape}"
    assert "torchvision MNIST" in dm.describe(), f"describe: {dm.describe()}"
