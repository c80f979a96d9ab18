"""Decoded-image cache: train-loader images/s of an image folder from the decoded cache ÷ decoding live.

Both sides are the real data module (``build_data`` with ``data=image_folder``'s keys): a folder of 500×375
JPEGs (smooth random colour fields with fine noise, so files are photo-sized: ≈ 50–60 KiB at quality 90),
torchvision resnet50's preprocessing (224 px, bilinear, crop_pct 0.9655), ``augment: {random_resized_crop: 0.8,
hflip: true}``, batch 64, 2 workers (``num_workers: 2``, persistent), no pinning; only
``decoded_cache.enabled`` differs. The train loader of each module is iterated for whole epochs, alternating
(live, cached, live, …) in one process; each loader's first epoch (worker start-up) is not counted.

* Images/s: images of a timed epoch ÷ its wall time; medians per side; the ratio of the medians is the result.
* The cached loader yields uint8 batches (the model normalises them on its device, after the host → device
  copy: ``TransferModule.on_after_batch_transfer``); the live loader yields normalised float batches. So that
  CPU-only training is shown too, a third side iterates the cached loader and normalises every batch in this
  process, as training on the CPU does (``cached + host normalisation``).
* The one-off build (decoding every image into the cache, in ``setup``) is timed separately, and so is a second
  ``setup`` that opens the existing cache (what a later job of a sweep pays).

Usage (from the repository root)::

    python -m benchmarks.decoded_cache            # recorded numbers (≈ 1.5 min on 2 CPU cores)
    python -m benchmarks.decoded_cache --quick    # smoke run (< 1 min)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.common import THREADS_HELP, Samples, format_table, machine_line, quiet, ratio, result_line, set_threads
from transferlab.backbones.base import DataConfig
from transferlab.data import build_data
from transferlab.data.transforms import normalization, normalize_images

TARGET = 5.0
#: torchvision resnet50's preprocessing (``create_backbone("tv:resnet50").data_config``), without building it.
RESNET50 = DataConfig(
    input_size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation="bilinear", crop_pct=0.9655
)


def write_jpegs(root: Path, count: int, classes: int = 4, seed: int = 0) -> int:
    """``count`` 500×375 JPEGs in ``classes`` class folders; returns their total size in bytes."""
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(count):
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((500, 375), Image.BICUBIC)
        pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-12, 13, (375, 500, 3), dtype=np.int16)
        path = folder / f"img_{i:05d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        total += path.stat().st_size
    return total


def data_cfg(root: Path, cache_dir: Path | None, batch_size: int, workers: int) -> dict:
    """The plain ``data`` config of one side."""
    cfg = {
        "name": "image_folder",
        "root": str(root),
        "batch_size": batch_size,
        "num_workers": workers,
        "pin_memory": False,
        "image_size": 224,
        "val_fraction": 0.05,
        "test_fraction": 0.05,
        "augment": {"random_resized_crop": 0.8, "hflip": True},
    }
    if cache_dir is not None:
        cfg["decoded_cache"] = {"enabled": True, "dir": str(cache_dir), "max_gib": 20}
    return cfg


def timed_setup(cfg: dict) -> tuple[object, float]:
    """Build and set up a data module; ``(module, seconds of setup)``."""
    dm = build_data(cfg, RESNET50)
    start = time.perf_counter()
    dm.setup("fit")
    return dm, time.perf_counter() - start


def epoch(loader: object, statistics: tuple | None = None) -> float:
    """Images/s of one pass over ``loader`` (uint8 batches normalised here when ``statistics`` are given)."""
    start, n = time.perf_counter(), 0
    for x, y in loader:  # type: ignore[attr-defined]
        if statistics is not None and x.dtype == torch.uint8:
            normalize_images(x, *statistics)
        n += len(y)
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    """Measure live vs cached train-loader throughput and print the table, the build time and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and epochs (< 1 min)")
    parser.add_argument("--images", type=int, default=None, help="JPEGs in the folder (default 1024, quick 384)")
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs per side (default 5, quick 2)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    images = args.images or (384 if args.quick else 1024)
    epochs = args.epochs or (2 if args.quick else 5)
    print(machine_line())
    tmp = Path(tempfile.mkdtemp(prefix="tl-bench-decoded-"))
    try:
        size = write_jpegs(tmp / "images", images)
        print(
            f"setup: {images} JPEGs 500x375 ({size / images / 1024:.0f} KiB each), 224 px (resnet50 preprocessing), "
            f"random_resized_crop 0.8 + hflip, batch {args.batch_size}, {args.workers} workers; "
            f"{epochs} alternating timed epochs per side after 1 warm-up each"
        )
        with quiet():
            live, live_setup = timed_setup(data_cfg(tmp / "images", None, args.batch_size, args.workers))
            cached, build = timed_setup(data_cfg(tmp / "images", tmp / "cache", args.batch_size, args.workers))
            _, reopen = timed_setup(data_cfg(tmp / "images", tmp / "cache", args.batch_size, args.workers))
        if type(cached.train_set).__name__ != "TensorImageDataset":  # type: ignore[attr-defined]
            raise RuntimeError("the cached side decodes live: the decoded cache was not used")
        loaders = {"live": live.train_dataloader(), "cached": cached.train_dataloader()}  # type: ignore[attr-defined]
        loaders["cached+host"] = loaders["cached"]
        host = {"cached+host": normalization(RESNET50)}
        rates = {name: Samples(name) for name in loaders}
        for loader in loaders.values():
            epoch(loader)  # warm-up: worker start-up
        for r in range(epochs):
            for name, loader in loaders.items():
                rates[name].values.append(epoch(loader, host.get(name)))
                print(f"  epoch {r + 1}/{epochs} {name:<6} {rates[name].values[-1]:8.1f} images/s", flush=True)
        speedup = ratio(rates["cached"].median, rates["live"].median)
        on_host = ratio(rates["cached+host"].median, rates["live"].median)
        print()
        rows = [
            ["live decoding (decoded_cache.enabled=false)", rates["live"].median, rates["live"].spread(), 1.0],
            [
                "decoded cache, uint8 batches (normalised on the device)",
                rates["cached"].median,
                rates["cached"].spread(),
                speedup,
            ],
            [
                "decoded cache + host normalisation (CPU training)",
                rates["cached+host"].median,
                rates["cached+host"].spread(),
                on_host,
            ],
        ]
        print(format_table(["variant", "median images/s", "min–max", "speed-up"], rows))
        n_cached = sum(len(d) for d in (cached.train_set, cached.val_set, cached.test_set))  # type: ignore[attr-defined]
        print(
            f"one-off build (setup, decoding {n_cached} images): {build:.2f} s = {n_cached / build:.0f} images/s "
            f"(live setup {live_setup:.2f} s); setup reusing the cache: {reopen:.2f} s; "
            f"build = {build * rates['live'].median / len(cached.train_set):.2f} live epochs"  # type: ignore[attr-defined]
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(machine_line())
    print(result_line("decoded_cache", speedup, f">= {TARGET:g}"))
    print(result_line("decoded_cache_host_normalised", on_host, "info"))


if __name__ == "__main__":
    main()
