"""In-memory splits held on the training device (data.on_device): batches cut there, loaders without workers.

No GPU here: PyTorch's ``meta`` device stands in for one. It runs every op of the batch path (index_select,
conversion, normalisation) without data, so a tensor left on the host (a CPU index, CPU statistics) fails
exactly as it would on a GPU.
"""

from __future__ import annotations

import pytest
import torch

from tests.data.conftest import write_images
from transferlab.data import base, build_data
from transferlab.data.tensor_loader import TensorImageDataset
from transferlab.errors import ConfigError

DEVICE = torch.device("meta")


def synthetic(data_config, **cfg):
    dm = build_data({"name": "synthetic", "image_size": 8, "num_workers": 2, "pin_memory": True, **cfg}, data_config)
    dm.setup("fit")
    return dm


def splits(dm) -> list[TensorImageDataset]:
    return [dm.train_set, dm.val_set, dm.test_set]


def test_dataset_cuts_normalises_and_labels_batches_on_its_device():
    images = torch.zeros(6, 1, 4, 4, dtype=torch.uint8)
    mean, std = torch.full((3, 1, 1), 0.5), torch.full((3, 1, 1), 0.25)
    ds = TensorImageDataset(images, torch.arange(6), mean, std).to(DEVICE)
    x, y = ds.__getitems__([4, 0, 2])
    assert (x.device, y.device) == (DEVICE, DEVICE), "the batch must be made on the data's device"
    assert x.shape == (3, 3, 4, 4) and x.dtype == torch.float32 and y.shape == (3,)


def test_auto_moves_small_splits_to_a_gpu_and_loaders_drop_workers_and_pinning(data_config):
    dm = synthetic(data_config)
    assert dm.place_on(torch.device("cpu")) is None, "on a CPU nothing moves"
    assert all(d.device.type == "cpu" for d in splits(dm)) and dm.data_device is None
    line = dm.place_on(DEVICE)
    assert line is not None and "held on meta" in line and "data.on_device" in line
    assert all(d.device == DEVICE for d in splits(dm))
    loader = dm.train_dataloader()
    assert loader.num_workers == 0 and not loader.pin_memory, "device tensors cannot go to workers or be pinned"
    x, y = next(iter(loader))
    assert x.device == DEVICE and y.device == DEVICE
    assert dm.val_dataloader().num_workers == 0


def test_auto_keeps_data_over_the_limit_on_the_host_and_true_moves_it_anyway(data_config, monkeypatch):
    monkeypatch.setattr(base, "ON_DEVICE_AUTO_MAX_BYTES", 100)
    dm = synthetic(data_config)
    line = dm.place_on(DEVICE)
    assert line is not None and "stay in host memory" in line and "data.on_device=true" in line
    assert all(d.device.type == "cpu" for d in splits(dm)) and dm.train_dataloader().num_workers == 2
    forced = synthetic(data_config, on_device=True)
    assert forced.place_on(DEVICE) is not None and all(d.device == DEVICE for d in splits(forced))
    never = synthetic(data_config, on_device=False)
    assert never.place_on(DEVICE) is None and all(d.device.type == "cpu" for d in splits(never))


def test_on_device_true_for_files_and_a_bad_value_are_clear_errors(data_config, tmp_path):
    for name in ("a", "b"):
        write_images(tmp_path / "images" / name, 6, color=40)
    dm = build_data(
        {"name": "image_folder", "root": str(tmp_path / "images"), "num_workers": 0, "on_device": True}, data_config
    )
    dm.setup("fit")
    with pytest.raises(ConfigError, match=r"data.on_device=true: data=image_folder reads its images from files.*Fix"):
        dm.place_on(torch.device("cpu"))  # refused whatever the device: the setting can never hold
    with pytest.raises(ConfigError, match=r"data.on_device='yes': expected true or false"):
        build_data({"name": "synthetic", "on_device": "yes"}, data_config)
