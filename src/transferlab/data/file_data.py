"""What every data source read from image files shares: the colour mode, the transforms, unreadable files, splits.

An image folder and a label file differ only in how they find the files and their labels. Both subclass
:class:`FileDataModule`, list ``(path, label)`` samples, and hand the split indices to :meth:`FileDataModule.
build_splits`, which attaches the train/eval pipelines and records the split membership (``split.json``).
A label is an ``int`` (one class per image) or a multi-hot ``float32`` vector (multi-label files).

With ``data.decoded_cache.enabled`` the splits are served from decoded, memory-mapped uint8 images
(:mod:`transferlab.data.decoded_cache`) instead of decoding every file every epoch; when the cache can not be
used (over its size budget, an unwritable folder) the source decodes live, with a log line.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torchvision.transforms import v2

from transferlab.backbones.base import DataConfig
from transferlab.config.readers import check_keys, read_bool, read_str
from transferlab.data.base import TransferDataModule
from transferlab.data.decoded_cache import (
    CACHE_KEYS,
    CACHE_WHERE,
    DEFAULT_MAX_GIB,
    DecodedCache,
    DecodedCacheOptions,
    Geometry,
)
from transferlab.data.image_datasets import ON_CORRUPT, ImageFileList, OnCorrupt, TransformedView, collate_readable
from transferlab.data.options import CommonOptions, read_choice
from transferlab.data.tensor_loader import TensorImageDataset
from transferlab.data.transforms import (
    AugmentSpec,
    augment_ops,
    eval_transform,
    interpolation_mode,
    normalization,
    tensor_augment,
    train_transform,
)
from transferlab.data.uint8_crops import RandomResizedCropFlip
from transferlab.errors import ConfigError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")

FILE_KEYS: tuple[str, ...] = ("on_corrupt", "decoded_cache")
"""Keys every file data source accepts besides the common ones (see :func:`read_file_options`)."""


def read_file_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Typed keyword arguments of :class:`FileDataModule` from the plain ``data`` config.

    Raises:
        ConfigError: On a bad value, naming ``data.<key>``.
    """
    return {
        "on_corrupt": read_choice(cfg, "on_corrupt", "fail", ON_CORRUPT),
        "decoded_cache": read_decoded_cache(cfg),
    }


def read_decoded_cache(cfg: Any) -> DecodedCacheOptions:
    """Read ``data.decoded_cache`` from the plain ``data`` config (absent = off).

    Raises:
        ConfigError: On an unknown key or a bad value, naming ``data.decoded_cache.<key>``.
    """
    if "decoded_cache" not in cfg:
        return DecodedCacheOptions()
    raw = cfg["decoded_cache"]
    if not isinstance(raw, dict) and not hasattr(raw, "keys"):
        raise ConfigError(
            f"{CACHE_WHERE}={raw!r}: expected a group of keys ({', '.join(CACHE_KEYS)}). "
            f"Fix: {CACHE_WHERE}.enabled=false to decode every epoch, or set its keys one by one."
        )
    check_keys(raw, CACHE_KEYS, where=CACHE_WHERE)
    enabled = bool(read_bool(raw, "enabled", True, where=CACHE_WHERE))
    folder = read_str(raw, "dir", None, example="<folder>", where=CACHE_WHERE)
    max_gib = raw.get("max_gib", DEFAULT_MAX_GIB)
    if isinstance(max_gib, bool) or not isinstance(max_gib, (int, float)) or not max_gib > 0:
        raise ConfigError(
            f"{CACHE_WHERE}.max_gib={max_gib!r}: expected a size in GiB > 0. "
            f"Fix: {CACHE_WHERE}.max_gib={DEFAULT_MAX_GIB:g}, or {CACHE_WHERE}.enabled=false."
        )
    return DecodedCacheOptions(enabled, Path(str(folder)).expanduser(), float(max_gib))


def collate_files(batch: Any) -> Any:
    """Collate live samples (:func:`collate_readable`); pass a batch the decoded cache's dataset collated through.

    :class:`TensorImageDataset` returns a whole ``(images, labels)`` tuple from ``__getitems__``; a live view
    yields a list of samples.
    """
    return batch if isinstance(batch, tuple) else collate_readable(batch)


class FileDataModule(TransferDataModule):
    """Shared behaviour of data modules that decode image files (see the module docstring).

    Args:
        options: Common options.
        augment: Training augmentation.
        class_names: Class names, index-aligned with labels.
        data_config: Backbone preprocessing (mean/std, interpolation, crop_pct, channels).
        on_corrupt: ``fail`` or ``skip`` unreadable image files.
        decoded_cache: Decode every image once into a memory-mapped file (``None`` = off).

    Raises:
        ConfigError: On an unknown ``on_corrupt``.
    """

    KEYS: ClassVar[tuple[str, ...]] = FILE_KEYS
    collate_fn = staticmethod(collate_files)

    def __init__(
        self,
        options: CommonOptions,
        augment: AugmentSpec,
        class_names: Sequence[str],
        data_config: DataConfig,
        *,
        on_corrupt: OnCorrupt = "fail",
        decoded_cache: DecodedCacheOptions | None = None,
    ) -> None:
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(f"data.on_corrupt={on_corrupt!r}: choose one of {', '.join(ON_CORRUPT)}.")
        super().__init__(options, augment, list(class_names))
        self.data_config = data_config
        self.on_corrupt: OnCorrupt = on_corrupt
        self.decoded_cache = decoded_cache or DecodedCacheOptions()
        self.skipped: list[Path] = []
        self.mode = "RGB" if data_config.in_chans == 3 else "L"
        self.train_tf = train_transform(self.augment, options.image_size, data_config)
        self.eval_tf = eval_transform(options.image_size, data_config)

    @property
    def title(self) -> str:
        """Name shown by :meth:`describe`, with the count of unreadable files left out."""
        count = len(self.skipped)
        return self.name + (f" ({count} unreadable file{'s' if count > 1 else ''} skipped)" if count else "")

    def build_splits(self, files: ImageFileList, indices: Mapping[str, np.ndarray]) -> None:
        """Set ``train_set``/``val_set``/``test_set`` and ``members`` from index arrays into ``files``.

        With the decoded cache on, the splits are :class:`TensorImageDataset` views of its memory map (files
        that fail to decode are left out with ``on_corrupt=skip``); otherwise, or when the cache can not be
        used, they decode live.

        Args:
            files: Every sample of every split, in one list.
            indices: ``train``, ``val`` and ``test`` → indices into ``files``.

        Raises:
            DataError: ``on_corrupt=fail`` and the cache finds a file that cannot be decoded.
        """
        indices = {split: np.asarray(indices[split], dtype=np.int64) for split in SPLITS}
        cached = self._cached_splits(files, indices) if self.decoded_cache.enabled else None
        if cached is not None:
            self.train_set, self.val_set, self.test_set = (cached[split] for split in SPLITS)
        else:
            self.train_set = TransformedView(files, indices["train"], self.train_tf, self.mode)
            self.val_set = TransformedView(files, indices["val"], self.eval_tf, self.mode)
            self.test_set = TransformedView(files, indices["test"], self.eval_tf, self.mode)
        paths = [str(Path(path).resolve()) for path, _ in files.samples]
        self.members = {split: [paths[int(i)] for i in indices[split]] for split in SPLITS}

    def fingerprint(self) -> str:
        """The split membership and every member file's modification time and size (see the base class)."""
        digest = hashlib.sha256(super().fingerprint().encode())
        for split in SPLITS:
            for path in (self.members or {}).get(split, []):
                try:
                    stat = os.stat(path)
                    digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
                except OSError:  # gone since setup: the key changes, so nothing stale is served
                    digest.update(f"{path}\0missing\n".encode())
        return digest.hexdigest()

    def _cached_splits(
        self, files: ImageFileList, indices: dict[str, np.ndarray]
    ) -> dict[str, TensorImageDataset] | None:
        """The splits over decoded arrays, one array per geometry (``None``: decode live); drops failed files."""
        size, dc = self.options.image_size, self.data_config
        resize = max(size, int(size / dc.crop_pct + 0.5))  # as eval_transform
        eval_geometry = Geometry(resize, size, interpolation_mode(dc), self.mode)
        # a random resized crop needs the crop margin: the centre resize × resize square, cropped every epoch
        crop = self.augment.random_resized_crop is not None
        train_geometry = Geometry(resize, resize, eval_geometry.interpolation, self.mode) if crop else eval_geometry
        groups: dict[Geometry, list[str]] = {}
        for split in SPLITS:
            groups.setdefault(train_geometry if split == "train" else eval_geometry, []).append(split)
        requests = [([files.samples[i] for s in splits for i in indices[s]], g) for g, splits in groups.items()]
        arrays = DecodedCache(self.decoded_cache, self.options.num_workers, self.on_corrupt).arrays(requests)
        if arrays is None:
            return None
        mean, std = normalization(dc)
        augment = self._cache_augment(size, eval_geometry.interpolation)
        out: dict[str, TensorImageDataset] = {}
        for splits, array in zip(groups.values(), arrays, strict=True):
            start = 0
            for split in splits:
                rows = np.arange(start, start + len(indices[split]))
                keep = np.asarray([int(r) not in array.failed for r in rows], dtype=bool)
                # a contiguous slice stays a view of the memory map; leaving files out copies the split once
                images = array.images[start : start + len(rows)]
                if not keep.all():
                    images = array.images[torch.from_numpy(rows[keep])]
                    self.skipped += [Path(files.samples[int(i)][0]) for i in indices[split][~keep]]
                    indices[split] = indices[split][keep]
                labels = torch.as_tensor(np.asarray(files.targets)[indices[split]])  # (n,) int or (n, C) multi-hot
                split_augment = augment if split == "train" else None
                # bit-identical to live wherever live is deterministic; random crops need no exact bits (one op less)
                exact = split_augment is None
                # uint8 batches, normalised by the model on its device (a quarter of the bytes to move)
                out[split] = TensorImageDataset(images, labels, mean, std, split_augment, exact=exact, normalize=False)
                start += len(rows)
        return out

    def _cache_augment(self, size: int, interpolation: v2.InterpolationMode) -> Any:
        """The train split's per-sample augmentation of cached uint8 images (``None`` when augmentation is off)."""
        spec = self.augment
        if spec.random_resized_crop is None:  # the train images are the eval images: size-preserving ops only
            return tensor_augment(spec, size, self.data_config)
        # the same ops in the same order as live: crop, flip, then rotation / colour jitter / TrivialAugment
        rest = [
            op
            for op in augment_ops(spec, size, interpolation, include_crop=False)
            if op.__class__ is not v2.RandomHorizontalFlip
        ]
        then = v2.Compose(rest) if rest else None
        return RandomResizedCropFlip(size, (spec.random_resized_crop, 1.0), interpolation, spec.hflip, then)
