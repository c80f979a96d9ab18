"""The data factory: registry dispatch, key checks, and every conf/data/*.yaml building a module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from transferlab.config.paths import conf_dir
from transferlab.data import TransferData, build_data, data_modules
from transferlab.errors import ConfigError

DATA_YAMLS = sorted((Path(__file__).parents[2] / "conf" / "data").glob("*.yaml"))


def test_every_yaml_is_found():
    names = {p.stem for p in DATA_YAMLS}
    expected = {
        "digits",
        "image_folder",
        "synthetic",
        "cifar10",
        "cifar100",
        "mnist",
        "fashion_mnist",
        "flowers102",
        "oxford_pets",
    }
    assert expected <= names, f"missing data configs: {sorted(expected - names)}"


@pytest.mark.parametrize("path", DATA_YAMLS, ids=lambda p: p.stem)
def test_yaml_composes_and_builds(path, tmp_path, make_tree, data_config):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and "data=" in first, f"{path.name} should start with a comment and an example"
    root = OmegaConf.create({"seed": 3, "paths": {"data_dir": str(tmp_path)}, "data": OmegaConf.load(path)})
    if root.data.name == "image_folder":
        root.data.root = str(make_tree({"a": 3, "b": 3}))
    if root.data.name == "label_file":  # a CSV over a generated folder: path relative to the file, one label
        images = make_tree({"a": 3, "b": 3})
        rows = "".join(f"{c}/{p.name},{c}\n" for c in "ab" for p in sorted((images / c).iterdir()))
        (images / "labels.csv").write_text("path,label\n" + rows)
        root.data.file = str(images / "labels.csv")
    cfg = OmegaConf.to_container(root.data, resolve=True)
    dm = build_data(cfg, data_config)
    assert isinstance(dm, TransferData), f"{path.name}: {type(dm).__name__} does not satisfy TransferData"
    assert dm.num_classes >= 2, f"{path.name}: num_classes should be known before setup, got {dm.num_classes}"
    # a multi-task config holds one full data config per task: check each
    for one in getattr(dm, "tasks", {"": dm}).values():
        assert one.options.seed == 3, f"{path.name}: data.seed should follow the top-level seed, got {one.options.seed}"
        assert one.options.pin_memory == torch.cuda.is_available(), f"{path.name}: pin_memory null = CUDA available"


def test_conf_dir_holds_the_data_group():
    assert (conf_dir() / "data" / "digits.yaml").is_file(), f"conf/data/digits.yaml not under {conf_dir()}"


def test_unknown_name_lists_valid_names(data_config):
    with pytest.raises(ConfigError) as err:
        build_data({"name": "digit"}, data_config)
    msg = str(err.value)
    assert "data.name='digit'" in msg and all(n in msg for n in data_modules()), f"should list names: {msg}"
    assert "did you mean 'digits'" in msg, f"should suggest the close name: {msg}"


def test_unknown_key_names_key_and_valid_keys(data_config):
    with pytest.raises(ConfigError) as err:
        build_data({"name": "synthetic", "batchsize": 8}, data_config)
    msg = str(err.value)
    assert "data.batchsize" in msg and "batch_size" in msg and "num_classes" in msg, f"unclear: {msg}"


def test_dictconfig_is_accepted(data_config):
    dm = build_data(OmegaConf.create({"name": "synthetic", "num_classes": 3}), data_config)
    assert dm.num_classes == 3, f"DictConfig input should work like a dict, got {dm.num_classes} classes"


@pytest.mark.parametrize(
    ("cfg", "needle"),
    [
        ({"image_size": "big"}, "data.image_size='big'"),
        ({"seed": -1}, "data.seed=-1"),
        ({"num_workers": 1.5}, "data.num_workers=1.5"),
        ({"pin_memory": "yes"}, "data.pin_memory='yes'"),
        ({"num_samples": {"training": 4}}, "data.num_samples.training"),
    ],
)
def test_bad_common_values(data_config, cfg, needle):
    with pytest.raises(ConfigError) as err:
        build_data({"name": "synthetic", **cfg}, data_config)
    assert needle in str(err.value), f"error should contain {needle!r}: {err.value}"
