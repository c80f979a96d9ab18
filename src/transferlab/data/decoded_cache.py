"""Decoded-image cache: every image file is decoded and resized once, into a memory-mapped uint8 array.

Decoding a JPEG and resizing it costs far more than anything a training step does to the pixels afterwards,
and a file source repeats it every epoch. The cache decodes each image of a split once, at the resolution its
split needs, into ``<dir>/<key>.u8`` (raw ``(N, side, side, C)`` uint8, channels last) with a JSON header
``<key>.json`` beside it; the splits are then served by :class:`~transferlab.data.tensor_loader.TensorImageDataset`
views of the memory map (the OS page cache holds them; ``place_on`` moves them to a GPU like in-memory data).

* **Eval images** (val and test, and train when augmentation is off) are exactly the live eval pipeline's uint8
  result before ``ToDtype``/``Normalize``: ``ToImage → Resize(shorter side to R) → CenterCrop(size)`` with
  ``R = max(size, int(size / crop_pct + 0.5))``, normalised by the same ops: batches are bit-identical.
* **Train images with a random resized crop** are the centre ``S × S`` square of the image resized to
  ``S = R`` (the crop margin), and ``RandomResizedCrop(size, scale)`` runs on that uint8 square each epoch.
  Unlike live decoding, crops are drawn from the centre square rather than the whole image (for a 4:3
  photo, the outer eighths of the long side are never seen); flips and the other ops are unchanged.

The key (SHA-256) covers the resolved file paths with their mtimes and sizes (in array order), the colour
mode, the resize/crop sides, the interpolation, torchvision's version and the format version: a changed file
or setting makes a new file. Several jobs of a sweep may build the same key at once: a lock file makes the
others wait and then read it; every file is written under a temporary name and renamed when complete, and a
header that does not match (missing, foreign, incomplete, a data file of the wrong size) means rebuild.
When the cache would exceed ``max_gib`` (or the free disk), or the folder is unwritable, the source decodes
live, with a log line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from transferlab.data.image_datasets import ImageFileList
from transferlab.data.options import WHERE
from transferlab.data.tensor_loader import worker_context
from transferlab.errors import DataError

try:  # POSIX only; elsewhere concurrent builders each write their own temporary file and the last rename wins
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

FORMAT = "transferlab.decoded.v1"
CACHE_KEYS: tuple[str, ...] = ("enabled", "dir", "max_gib")
"""The keys of ``data.decoded_cache`` (read by :func:`transferlab.data.file_data.read_decoded_cache`)."""
CACHE_WHERE = f"{WHERE}.decoded_cache"
GIB = 2**30
DEFAULT_MAX_GIB = 20.0


@dataclass(frozen=True)
class DecodedCacheOptions:
    """``data.decoded_cache``: decode every image once into a memory-mapped file.

    Attributes:
        enabled: Whether to use the cache (off when the key is absent from a config built in code).
        dir: Folder of the cache files (shared by the jobs of a sweep).
        max_gib: Largest size of one data set's cache; above it the images are decoded live.
    """

    enabled: bool = False
    dir: Path | None = None
    max_gib: float = DEFAULT_MAX_GIB


@dataclass(frozen=True)
class Geometry:
    """What one cached array holds: the shorter side resized to ``resize``, then the centre ``side × side``."""

    resize: int
    side: int
    interpolation: v2.InterpolationMode
    mode: str

    @property
    def channels(self) -> int:
        """Channels of the PIL colour mode (``RGB`` 3, ``L`` 1)."""
        return 3 if self.mode == "RGB" else 1

    def pipeline(self) -> v2.Compose:
        """PIL image → uint8 ``(C, side, side)``: the live eval pipeline's ops before ``ToDtype``/``Normalize``."""
        return v2.Compose(
            [
                v2.ToImage(),
                v2.Resize(self.resize, interpolation=self.interpolation, antialias=True),
                v2.CenterCrop(self.side),
            ]
        )


def array_key(samples: Sequence[tuple[Any, Any]], geometry: Geometry) -> str:
    """SHA-256 of the files (resolved path, mtime, size, in order) and the preprocessing of one array."""
    digest = hashlib.sha256()
    meta = {**asdict(geometry), "interpolation": geometry.interpolation.value}
    digest.update(json.dumps({"format": FORMAT, "torchvision": torchvision.__version__, **meta}).encode())
    for path, _ in samples:
        resolved = Path(path).resolve()
        try:
            st = os.stat(resolved)
            stamp = f"{st.st_mtime_ns}:{st.st_size}"
        except OSError:
            stamp = "missing"  # decoding it fails, as live decoding would
        digest.update(f"\0{resolved}\0{stamp}".encode())
    return digest.hexdigest()


@dataclass
class DecodedArray:
    """One cached array: images ``(N, C, side, side)`` (a channels-last view of the memory map) and failures.

    Attributes:
        images: uint8 images in the order of the samples they were built from.
        failed: Row → the message of a file that could not be decoded (its row holds zeros).
        path: The data file (``None`` for an empty array).
        source: ``built`` or ``reused``.
    """

    images: torch.Tensor
    failed: dict[int, str]
    path: Path | None
    source: str


class _Decode(Dataset):
    """Row ``i`` → ``(i, uint8 image or None, error message or None)``; decoding errors are returned, not raised."""

    def __init__(self, samples: Sequence[tuple[Any, Any]], geometry: Geometry) -> None:
        self.files = ImageFileList(samples, "fail")
        self.mode = geometry.mode
        self.pipeline = geometry.pipeline()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            img, _ = self.files[index]  # type: ignore[misc]
        except DataError as err:  # the message live decoding raises, re-raised or logged by the builder
            return index, None, str(err)
        if img.mode != self.mode:
            img = img.convert(self.mode)
        return index, self.pipeline(img).as_subclass(torch.Tensor), None


def _as_list(batch: list[Any]) -> list[Any]:
    return batch


class DecodedCache:
    """Opens or builds the decoded arrays of one data set in ``options.dir`` (see the module docstring).

    Args:
        options: The ``data.decoded_cache`` settings (``dir`` must be set).
        num_workers: Worker processes that decode while building (``data.num_workers``).
        on_corrupt: ``fail`` raises the :class:`DataError` live decoding would; ``skip`` logs the file and
            reports its row in :attr:`DecodedArray.failed`.
    """

    def __init__(self, options: DecodedCacheOptions, num_workers: int, on_corrupt: str = "fail") -> None:
        if options.dir is None:
            raise ValueError("DecodedCache needs options.dir")
        self.options = options
        self.dir = options.dir
        self.num_workers = num_workers
        self.on_corrupt = on_corrupt

    def arrays(self, requests: Sequence[tuple[Sequence[tuple[Any, Any]], Geometry]]) -> list[DecodedArray] | None:
        """Open or build one array per ``(samples, geometry)``; ``None`` when the source must decode live (logged).

        Raises:
            DataError: ``on_corrupt=fail`` and a file cannot be decoded.
        """
        shapes = [(len(samples), g.side, g.side, g.channels) for samples, g in requests]
        total = sum(int(np.prod(s)) for s in shapes)
        if total > self.options.max_gib * GIB:
            log.warning(
                "decoded cache: off, decoding live: the decoded images take %.2f GiB, over %s.max_gib=%g. "
                "HINT: raise it, or lower data.image_size",
                total / GIB,
                CACHE_WHERE,
                self.options.max_gib,
            )
            return None
        keys = [array_key(samples, g) for samples, g in requests]
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            opened = [self._open(k, s) for k, s in zip(keys, shapes, strict=True)]
            missing = sum(int(np.prod(s)) for a, s in zip(opened, shapes, strict=True) if a is None)
            free = shutil.disk_usage(self.dir).free
        except OSError as err:
            log.warning("decoded cache: off, decoding live: %s is unusable (%s)", self.dir, err)
            return None
        if missing > free:
            log.warning(
                "decoded cache: off, decoding live: %.2f GiB to write but %.2f GiB free in %s",
                missing / GIB,
                free / GIB,
                self.dir,
            )
            return None
        out = []
        for (samples, geometry), key, shape, cached in zip(requests, keys, shapes, opened, strict=True):
            try:
                out.append(self._get(samples, geometry, key, shape, cached))
            except OSError as err:  # a read-only or full disk costs speed, not the run
                log.warning("decoded cache: off, decoding live: could not write to %s (%s)", self.dir, err)
                return None
        return out

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.dir / f"{key}.u8", self.dir / f"{key}.json"

    def _open(self, key: str, shape: tuple[int, ...]) -> DecodedArray | None:
        """The complete array of ``key``, or ``None`` (absent, foreign, incomplete or truncated: rebuild)."""
        if shape[0] == 0:
            return DecodedArray(torch.empty(shape, dtype=torch.uint8).permute(0, 3, 1, 2), {}, None, "reused")
        data, header = self._paths(key)
        try:
            meta = json.loads(header.read_text())
            expected = {"format": FORMAT, "key": key, "shape": list(shape), "dtype": "uint8", "complete": True}
            if any(meta.get(k) != v for k, v in expected.items()) or data.stat().st_size != int(np.prod(shape)):
                log.warning("decoded cache: %s does not match its header; rebuilding it", data)
                return None
            # copy-on-write: torch gets a writable array (no warning) and nothing can write back to the file
            array = np.memmap(data, dtype=np.uint8, mode="c", shape=shape)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, AttributeError) as err:  # unreadable or foreign header
            log.warning("decoded cache: %s is unreadable (%s); rebuilding it", header, err)
            return None
        failed = {int(row): str(message) for row, message in meta.get("failed", {}).items()}
        return DecodedArray(torch.from_numpy(array).permute(0, 3, 1, 2), failed, data, "reused")

    def _get(
        self,
        samples: Sequence[tuple[Any, Any]],
        geometry: Geometry,
        key: str,
        shape: tuple[int, ...],
        cached: DecodedArray | None,
    ) -> DecodedArray:
        if cached is None:
            with self._lock(key):
                cached = self._open(key, shape)  # another job may have built it while this one waited
                if cached is None:
                    self._build(samples, geometry, key, shape)
                    cached = self._open(key, shape)
                    if cached is None:
                        raise OSError(f"the cache file of {key[:12]} could not be read back")
                    cached.source = "built"
        if cached.source == "reused":
            log.info(
                "decoded cache: reusing %s (%s images at %d px, %.2f GiB)",
                cached.path,
                f"{shape[0]:,}",
                shape[1],
                int(np.prod(shape)) / GIB,
            )
        self._check_failed(samples, cached.failed)
        return cached

    def _check_failed(self, samples: Sequence[tuple[Any, Any]], failed: dict[int, str]) -> None:
        if failed and self.on_corrupt == "fail":
            raise DataError(failed[min(failed)])
        for row in sorted(failed):
            log.warning("decoded cache: left out unreadable image file %s (%s)", samples[row][0], failed[row])

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        """Hold ``<key>.lock`` while building (released by the OS if the process dies)."""
        if fcntl is None:
            yield
            return
        with open(self.dir / f"{key}.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("decoded cache: another process is building %s; waiting for it", key[:12])
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _build(self, samples: Sequence[tuple[Any, Any]], geometry: Geometry, key: str, shape: tuple[int, ...]) -> None:
        """Decode every sample into ``<key>.u8`` under a temporary name, then rename it and write the header."""
        data, header = self._paths(key)
        token = f"{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        tmp_data, tmp_header = data.with_name(f"{data.name}.{token}"), header.with_name(f"{header.name}.{token}")
        nbytes = int(np.prod(shape))
        log.info(
            "decoded cache: decoding %s images to %s (%.2f GiB, %d px)…", f"{shape[0]:,}", data, nbytes / GIB, shape[1]
        )
        start = time.perf_counter()
        failed: dict[int, str] = {}
        try:
            array = np.memmap(tmp_data, dtype=np.uint8, mode="w+", shape=shape)
            loader = DataLoader(
                _Decode(samples, geometry),
                batch_size=16,
                num_workers=self.num_workers,
                collate_fn=_as_list,
                multiprocessing_context=worker_context(self.num_workers),  # also inside a joblib launcher's job
            )
            for batch in loader:
                for row, image, error in batch:
                    if error is not None:
                        if self.on_corrupt == "fail":
                            raise DataError(error)
                        failed[row] = error
                    else:
                        array[row] = image.permute(1, 2, 0).numpy()
            array.flush()
            del array
            meta = {"format": FORMAT, "key": key, "shape": list(shape), "dtype": "uint8", "complete": True}
            tmp_header.write_text(json.dumps({**meta, "failed": {str(r): m for r, m in failed.items()}}))
            # data first: a header names only a complete file (a reader that finds no header rebuilds)
            os.replace(tmp_data, data)
            os.replace(tmp_header, header)
        finally:
            for path in (tmp_data, tmp_header):
                with contextlib.suppress(OSError):
                    path.unlink()
        seconds = time.perf_counter() - start
        log.info(
            "decoded cache: decoded %s images in %.1f s (%.0f images/s); %.2f GiB at %s",
            f"{shape[0]:,}",
            seconds,
            shape[0] / max(seconds, 1e-9),
            nbytes / GIB,
            data,
        )
