"""The decoded-image cache of file data: bit-identical eval tensors, keys, reuse, rebuilds, fallbacks, errors."""

from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import InterpolationMode

from tests.clitools import run_cli
from transferlab.data import build_data
from transferlab.data import decoded_cache as dc
from transferlab.data.image_datasets import TransformedView
from transferlab.data.tensor_loader import TensorImageDataset
from transferlab.data.transforms import normalization, normalize_images
from transferlab.data.uint8_crops import RandomResizedCropFlip
from transferlab.errors import ConfigError, DataError

LOGGER = "transferlab.data.decoded_cache"
AUGMENT = {"random_resized_crop": 0.5, "hflip": True}


def write_folder(root: Path, per_class: int = 6, fmt: str = "jpg", size: tuple[int, int] = (40, 30)) -> Path:
    """Two class folders of photo-like images (smooth colour fields with noise), ``size`` = (width, height)."""
    rng = np.random.default_rng(0)
    for c in range(2):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            coarse = Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)).resize(size, Image.BICUBIC)
            pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-20, 21, (size[1], size[0], 3), dtype=np.int16)
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / f"c{c}" / f"{i}.{fmt}")
    return root


def module(root: Path, data_config, cache: Path | None, setup: bool = True, **cfg):
    base = {"name": "image_folder", "root": str(root), "num_workers": 0, "batch_size": 4}
    base |= {"val_fraction": 0.25, "test_fraction": 0.25, "pin_memory": False}
    if cache is not None:
        base["decoded_cache"] = {"enabled": True, "dir": str(cache)}
    dm = build_data({**base, **cfg}, data_config)
    if setup:
        dm.setup()
    return dm


def batches(loader) -> list[torch.Tensor]:
    return [x for x, _ in loader]


@pytest.mark.parametrize(
    ("fmt", "interpolation", "in_chans"), [("jpg", "bicubic", 3), ("png", "bilinear", 3), ("jpg", "bilinear", 1)]
)
def test_eval_tensors_are_bit_identical_to_live_decoding(tmp_path, data_config, fmt, interpolation, in_chans):
    mean, std = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) if in_chans == 3 else ((0.45,), (0.226,))
    config = replace(data_config, interpolation=interpolation, in_chans=in_chans, mean=mean, std=std)
    root = write_folder(tmp_path / "img", fmt=fmt)
    for augment in (AUGMENT, None):  # with augmentation off the train split reads the eval array too
        live = module(root, config, None, augment=augment)
        cached = module(root, config, tmp_path / "cache", augment=augment)
        assert isinstance(cached.val_set, TensorImageDataset) and isinstance(live.val_set, TransformedView)
        splits = ("val", "test") if augment else ("train", "val", "test")
        for split in splits:
            a, b = getattr(live, f"{split}_dataloader")(), getattr(cached, f"{split}_dataloader")()
            if split == "train":  # shuffled: compare samples in index order
                pairs = [(live.train_set[i][0], cached.train_set[i][0]) for i in range(len(live.train_set))]
            else:
                pairs = list(zip(batches(a), batches(b), strict=True))
            for x, raw in pairs:
                # the cache serves uint8; the model normalises on its device with the function used here
                assert raw.dtype == torch.uint8, raw.dtype
                y = normalize_images(raw if raw.ndim == 4 else raw[None], *normalization(config))
                y = y if raw.ndim == 4 else y[0]
                assert x.shape == y.shape and x.dtype == y.dtype == torch.float32, (x.shape, y.shape)
                where = f"{split} ({fmt}, {interpolation}, {in_chans} ch)"
                assert torch.equal(x, y), f"{where}: max diff {(x - y).abs().max()}"
        assert cached.members == live.members, "split.json must not change with the cache"


def test_augmented_train_batches_have_the_size_vary_by_epoch_and_follow_the_seed(tmp_path, data_config):
    dm = module(write_folder(tmp_path / "img"), data_config, tmp_path / "cache", augment=AUGMENT)
    assert dm.train_set.images.shape[-1] == 18, "train images keep the crop margin: int(16 / 0.875 + 0.5)"
    loader = dm.train_dataloader()

    def epoch(seed: int, number: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        loader.sampler.set_epoch(number)
        return [x for x, _ in loader]

    first = epoch(0, 0)
    x, y = next(iter(loader))
    assert x.shape[1:] == (3, 16, 16) and x.dtype == torch.uint8 and y.dtype == torch.int64, (x.shape, y.dtype)
    assert all(torch.equal(a, b) for a, b in zip(first, epoch(0, 0), strict=True)), "same seed, same batches"
    assert not all(torch.equal(a, b) for a, b in zip(first, epoch(1, 1), strict=True)), "epochs must differ"


def test_random_resized_crop_draws_crops_like_torchvision():
    crop = RandomResizedCropFlip(8, (0.5, 1.0), InterpolationMode.BILINEAR, hflip=False)
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = crop.params(30, 40, rng.random(23).tolist())
        assert 0 <= top <= 30 - h and 0 <= left <= 40 - w, (top, left, h, w)
        assert 0.5 * 1200 * 0.9 <= h * w <= 1200 and 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1, (h, w)
    assert crop.params(10, 100, [0.99] * 23) == (0, 43, 10, 13), "the fallback: centre crop at the ratio bound"
    assert crop(torch.zeros(3, 30, 40, dtype=torch.uint8)).shape == (3, 8, 8)


def test_the_cache_is_reused_and_keyed_by_files_and_preprocessing(tmp_path, data_config, caplog, monkeypatch):
    root, cache = write_folder(tmp_path / "img"), tmp_path / "cache"
    with caplog.at_level("INFO", logger=LOGGER):
        module(root, data_config, cache)
    assert "decoding 12 images to" in caplog.text and "images/s" in caplog.text and "GiB" in caplog.text, caplog.text
    files = {p: p.stat().st_mtime_ns for p in cache.glob("*.u8")}
    assert len(files) == 1 and not list(cache.glob("*.tmp")), sorted(cache.iterdir())

    def no_decoding(self, index):
        raise AssertionError("a reused cache decodes nothing")

    monkeypatch.setattr(dc._Decode, "__getitem__", no_decoding)
    caplog.clear()
    with caplog.at_level("INFO", logger=LOGGER):
        module(root, data_config, cache)
    assert "reusing" in caplog.text and "decoding" not in caplog.text, caplog.text
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*.u8")} == files, "the file must not be rewritten"
    monkeypatch.undo()

    module(root, data_config, cache, image_size=12)
    assert len(list(cache.glob("*.u8"))) == 2, "another image_size is another key"
    changed = root / "c0" / "0.jpg"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(changed)
    os.utime(changed, ns=(1, 1))
    module(root, data_config, cache)
    assert len(list(cache.glob("*.u8"))) == 3, "a changed file (mtime, size) is another key"


@pytest.mark.parametrize("damage", ["truncate", "foreign_header", "no_header"])
def test_a_damaged_cache_file_is_rebuilt_not_trusted(tmp_path, data_config, caplog, damage):
    root, cache = write_folder(tmp_path / "img"), tmp_path / "cache"
    expected = batches(module(root, data_config, cache).test_dataloader())
    data = next(cache.glob("*.u8"))
    header = data.with_suffix(".json")
    if damage == "truncate":
        data.write_bytes(data.read_bytes()[:100])
    elif damage == "foreign_header":
        header.write_text(json.dumps({"format": "something else"}))
    else:
        header.unlink()
    with caplog.at_level("INFO", logger=LOGGER):
        again = batches(module(root, data_config, cache).test_dataloader())
    assert "decoding 12 images" in caplog.text, caplog.text
    assert all(torch.equal(a, b) for a, b in zip(expected, again, strict=True))
    assert data.stat().st_size == 12 * 16 * 16 * 3 and json.loads(header.read_text())["complete"] is True


def test_over_budget_or_unwritable_falls_back_to_live_decoding(tmp_path, data_config, caplog):
    root = write_folder(tmp_path / "img")
    with caplog.at_level("WARNING", logger=LOGGER):
        budget = {"enabled": True, "dir": str(tmp_path / "c"), "max_gib": 1e-7}
        dm = module(root, data_config, None, decoded_cache=budget)
    assert isinstance(dm.train_set, TransformedView), "over max_gib: decode live"
    assert "decoding live" in caplog.text and "data.decoded_cache.max_gib=1e-07" in caplog.text, caplog.text
    assert not (tmp_path / "c").exists()
    caplog.clear()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with caplog.at_level("WARNING", logger=LOGGER):
        dm = module(root, data_config, blocker / "cache")
    assert isinstance(dm.train_set, TransformedView) and "is unusable" in caplog.text, caplog.text
    assert next(iter(dm.train_dataloader()))[0].shape[1:] == (3, 16, 16), "the live fallback still trains"


def _build_in_process(root: str, cache: str, queue) -> None:
    from transferlab.backbones.base import DataConfig

    config = DataConfig(input_size=16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.875)
    dm = module(Path(root), config, Path(cache))
    queue.put((type(dm.test_set).__name__, float(next(iter(dm.test_dataloader()))[0].sum())))


@pytest.mark.slow  # real subprocesses: in .ci/run's slow phase (the README suite stays under 15 min)
def test_two_processes_building_at_once_both_succeed(tmp_path):
    root, cache = write_folder(tmp_path / "img", per_class=20), tmp_path / "cache"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build_in_process, args=(str(root), str(cache), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0], "both builders must succeed"
    results = [queue.get(timeout=5) for _ in procs]
    assert results[0] == results[1] and results[0][0] == "TensorImageDataset", results
    assert len(list(cache.glob("*.u8"))) == 1 and not list(cache.glob("*.tmp")), sorted(cache.iterdir())


def test_a_file_that_fails_to_decode_is_left_out_or_fails_like_live(tmp_path, data_config, caplog):
    root = write_folder(tmp_path / "img")
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "whole.jpg")
    whole = (tmp_path / "whole.jpg").read_bytes()
    (root / "c0" / "1.jpg").write_bytes(whole[: len(whole) // 2])  # header fine: passes the setup check
    cache = tmp_path / "cache"
    live = module(root, data_config, None)
    with pytest.raises(DataError) as live_error:
        for split in (live.train_set, live.val_set, live.test_set):
            [split[i] for i in range(len(split))]
    with pytest.raises(DataError) as cached_error:
        module(root, data_config, cache)
    assert str(cached_error.value) == str(live_error.value), "the same DataError as live decoding"
    for attempt in ("build", "reuse"):
        caplog.clear()
        with caplog.at_level("WARNING", logger=LOGGER):
            dm = module(root, data_config, cache, on_corrupt="skip")
        assert sum(len(d) for d in (dm.train_set, dm.val_set, dm.test_set)) == 11, attempt
        assert dm.skipped == [root / "c0" / "1.jpg"] and "1 unreadable file skipped" in dm.describe(), dm.skipped
        assert "left out unreadable image file" in caplog.text and "1.jpg" in caplog.text, caplog.text
        assert str((root / "c0" / "1.jpg").resolve()) not in {p for m in dm.members.values() for p in m}
    with pytest.raises(DataError, match=r"1\.jpg cannot be read"):
        module(root, data_config, cache)  # the stored failure, with on_corrupt=fail


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (3, r"data\.decoded_cache=3: expected a group of keys.*Fix:"),
        (None, r"data\.decoded_cache=None: expected a group of keys"),
        ({"enabled": "maybe", "dir": "x"}, r"data\.decoded_cache\.enabled='maybe': expected true or false"),
        ({"dir": ""}, r"data\.decoded_cache\.dir='': must not be empty\. Fix:"),
        ({"dir": None}, r"data\.decoded_cache\.dir is required.*Fix:"),
        ({"dir": [1, 2]}, r"data\.decoded_cache\.dir=\[1, 2\]: expected a string"),
        ({"dir": "x", "max_gib": -3}, r"data\.decoded_cache\.max_gib=-3: expected a size in GiB > 0\. Fix:"),
        ({"dir": "x", "max_gib": "abc"}, r"data\.decoded_cache\.max_gib='abc'"),
        ({"dir": "x", "bogus": 1}, r"data\.decoded_cache\.bogus"),
    ],
)
def test_bad_config_values_are_config_errors(tmp_path, data_config, value, message):
    root = write_folder(tmp_path / "img", per_class=2)
    with pytest.raises(ConfigError, match=message):
        module(root, data_config, None, setup=False, decoded_cache=value)


@pytest.mark.slow  # real subprocesses: in .ci/run's slow phase (the README suite stays under 15 min)
def test_train_logs_the_cache_and_a_second_run_reuses_it(tmp_path):
    root = write_folder(tmp_path / "img", per_class=8)
    args = ["data=image_folder", f"data.root={root}", "backbone=small_cnn", "strategy=finetune", "debug=fast"]
    args += ["data.num_workers=0", "data.batch_size=4", f"data.decoded_cache.dir={tmp_path / 'cache'}"]
    first = run_cli("train", *args, f"hydra.run.dir={tmp_path / 'run1'}", cwd=tmp_path)
    text = first.stdout + first.stderr
    assert "decoded cache: decoding" in text and "images/s" in text, text[-3000:]
    second = run_cli("train", *args, f"hydra.run.dir={tmp_path / 'run2'}", cwd=tmp_path)
    text = second.stdout + second.stderr
    assert "decoded cache: reusing" in text and "decoded cache: decoding" not in text, text[-3000:]
