"""The image-folder data module: both layouts, splits, class names and folder errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transferlab.data import ImageFolderDataModule, build_data
from transferlab.errors import ConfigError, DataError


def folder(root, data_config, setup: bool = True, **cfg) -> ImageFolderDataModule:
    dm = build_data({"name": "image_folder", "root": str(root), "num_workers": 0, "batch_size": 8, **cfg}, data_config)
    if setup:
        dm.setup()
    return dm


def split_labels(ds) -> Counter:
    return Counter(int(ds.base.targets[i]) for i in ds.indices)


def test_pooled_layout_is_split_stratified(make_tree, data_config):
    root = make_tree({"dog": 10, "cat": 10, "eel": 10})
    dm = folder(root, data_config)
    assert dm.class_names == ["cat", "dog", "eel"], f"class names must be sorted folder names, got {dm.class_names}"
    sizes = (len(dm.train_set), len(dm.val_set), len(dm.test_set))
    assert sizes == (18, 6, 6), f"10 per class with val 0.15 / test 0.2 should split 6/2/2 per class, got {sizes}"
    for name in ("train_set", "val_set", "test_set"):
        counts = split_labels(getattr(dm, name))
        assert set(counts) == {0, 1, 2} and len(set(counts.values())) == 1, f"{name} not stratified: {counts}"
    all_idx = [i for ds in (dm.train_set, dm.val_set, dm.test_set) for i in ds.indices.tolist()]
    assert sorted(all_idx) == list(range(30)), "splits must partition the images"


def test_batches_are_resized_and_normalised(make_tree, data_config):
    dm = folder(make_tree({"a": 4, "b": 4}), data_config, image_size=10)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (3, 10, 10) and x.dtype == torch.float32, f"batch {tuple(x.shape)} {x.dtype}"
    assert x.min() >= -1 - 1e-5 and x.max() <= 1 + 1e-5, f"mean/std 0.5 should map to [-1, 1]: {x.min()}..{x.max()}"
    assert y.dtype == torch.int64, f"labels dtype {y.dtype}"
    assert not dm.augment_enabled and torch.equal(dm.train_set[0][0], dm.train_set[0][0]), (
        "without augmentation the train transform must be deterministic"
    )


def test_split_layout_uses_its_folders(make_tree, data_config):
    root = make_tree({"train": {"a": 6, "b": 6}, "val": {"a": 2, "b": 2}, "test": {"a": 3, "b": 3}})
    dm = folder(root, data_config)
    sizes = (len(dm.train_set), len(dm.val_set), len(dm.test_set))
    assert sizes == (12, 4, 6), f"train/val/test folders hold 12/4/6 images, got {sizes}"
    test_files = {dm.test_set.base.samples[i][0].parent.parent.name for i in dm.test_set.indices}
    assert test_files == {"test"}, f"test images must come from test/, got {test_files}"
    dm = folder(root, data_config, shots_per_class=2)
    assert len(dm.train_set) == 4 and len(dm.test_set) == 6, f"2 shots: {dm.describe()}"


def test_missing_val_is_carved_from_train(make_tree, data_config):
    root = make_tree({"train": {"a": 10, "b": 10}, "test": {"a": 3, "b": 3}})
    dm = folder(root, data_config, val_fraction=0.2)
    sizes = (len(dm.train_set), len(dm.val_set), len(dm.test_set))
    assert sizes == (16, 4, 6), f"val 0.2 of train/ (2 per class) with test/ kept, got {sizes}"
    val_dirs = {dm.val_set.base.samples[i][0].parent.parent.name for i in dm.val_set.indices}
    assert val_dirs == {"train"}, f"val must be carved from train/, got {val_dirs}"


def test_missing_root_names_path_and_key(tmp_path, data_config):
    with pytest.raises(DataError) as err:
        folder(tmp_path / "nope", data_config)
    assert "data.root" in str(err.value) and str(tmp_path / "nope") in str(err.value), f"unclear: {err.value}"


def test_unset_root_is_a_config_error(data_config):
    with pytest.raises(ConfigError) as err:
        build_data({"name": "image_folder", "root": "???"}, data_config)
    assert "data.root" in str(err.value) and "required" in str(err.value), f"unclear: {err.value}"


def test_empty_root(tmp_path, data_config):
    with pytest.raises(DataError) as err:
        folder(tmp_path, data_config)
    assert "empty" in str(err.value) and str(tmp_path) in str(err.value), f"unclear: {err.value}"


def test_empty_class_folder_is_named(make_tree, data_config):
    root = make_tree({"a": 3, "b": 3})
    (root / "c").mkdir()
    with pytest.raises(DataError) as err:
        folder(root, data_config, setup=False)
    assert str(root / "c") in str(err.value) and "no images" in str(err.value), f"unclear: {err.value}"


def test_class_missing_from_a_split_is_named(make_tree, data_config):
    root = make_tree({"train": {"a": 3, "b": 3}, "val": {"a": 2}})
    with pytest.raises(DataError) as err:
        folder(root, data_config, setup=False)
    assert str(Path(root, "val", "b")) in str(err.value) and "missing" in str(err.value), f"unclear: {err.value}"


def test_extra_class_in_a_split_is_named(make_tree, data_config):
    root = make_tree({"train": {"a": 3}, "test": {"a": 2, "z": 2}})
    with pytest.raises(DataError) as err:
        folder(root, data_config, setup=False)
    assert str(Path(root, "test", "z")) in str(err.value), f"unclear: {err.value}"


def test_corrupt_image_names_the_file(make_tree, data_config):
    root = make_tree({"a": 3, "b": 3})
    bad = root / "a" / "img_0.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError) as err:  # on_corrupt=fail (the default): setup checks every file first
        folder(root, data_config, val_fraction=0.01, test_fraction=0.01)
    message = str(err.value)
    assert str(bad) in message and "1 of 6 image files" in message, f"unclear: {message}"
    assert "data.on_corrupt=skip" in message, f"the fix should be named: {message}"


def test_on_corrupt_skip_leaves_unreadable_files_out(make_tree, data_config, caplog):
    root = make_tree({"a": 4, "b": 4})
    (root / "a" / "img_0.png").write_bytes(b"not a png")
    cut = root / "b" / "img_1.png"
    cut.write_bytes(cut.read_bytes()[:40])  # a cut-off PNG fails verify()
    with caplog.at_level("WARNING", logger="transferlab.data.image_folder"):
        dm = folder(root, data_config, on_corrupt="skip", val_fraction=0.25, test_fraction=0.25)
    kept = sorted(p.name for p, _ in dm.train_set.base.samples)
    assert len(dm.train_set.base.samples) == 6 and dm.skipped == [root / "a" / "img_0.png", cut], (kept, dm.skipped)
    assert "left out 2 unreadable of 8 image files" in caplog.text and str(cut) in caplog.text, caplog.text
    assert "2 unreadable files skipped" in dm.describe(), dm.describe()
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape[0] > 0


def test_on_corrupt_skip_drops_a_file_that_fails_to_decode_from_its_batch(make_tree, data_config, tmp_path):
    root = make_tree({"a": 4, "b": 4})
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    img.save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (root / "a" / "cut.jpg").write_bytes(data[: len(data) // 2])  # header fine: passes the setup check
    dm = folder(root, data_config, on_corrupt="skip", val_fraction=0.2, test_fraction=0.2, shots_per_class=None)
    sizes = [len(y) for _, y in dm.train_dataloader()] + [len(y) for _, y in dm.val_dataloader()]
    sizes += [len(y) for _, y in dm.test_dataloader()]
    assert sum(sizes) == 8, f"the cut JPEG must be left out of its batch: {sizes}"
    dm = folder(root, data_config, val_fraction=0.2, test_fraction=0.2)
    with pytest.raises(DataError, match=r"cut\.jpg cannot be read.*on_corrupt=skip"):
        (
            [dm.train_set[i] for i in range(len(dm.train_set))]
            + [dm.val_set[i] for i in range(len(dm.val_set))]
            + [dm.test_set[i] for i in range(len(dm.test_set))]
        )


def test_on_corrupt_takes_fail_or_skip(make_tree, data_config):
    with pytest.raises(ConfigError, match=r"data\.on_corrupt='ignore'.*fail, skip"):
        folder(make_tree({"a": 2, "b": 2}), data_config, setup=False, on_corrupt="ignore")
