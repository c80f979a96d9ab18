"""Your own images: a folder of class folders (or of ``train/``, ``val/``, ``test/`` folders of them).

Example:
    >>> cfg = {"name": "image_folder", "root": "~/photos", "shots_per_class": 10}
    >>> dm = build_data(cfg, backbone.data_config)

"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from transferlab.backbones.base import DataConfig
from transferlab.data.decoded_cache import DecodedCacheOptions
from transferlab.data.file_data import FILE_KEYS, FileDataModule, read_file_options
from transferlab.data.folders import FolderTree, list_samples, read_tree
from transferlab.data.image_datasets import ImageFileList, OnCorrupt, find_unreadable
from transferlab.data.options import (
    CommonOptions,
    check_split_fractions,
    read_common,
    read_float,
    read_required_str,
    read_shots,
)
from transferlab.data.registry import register_data
from transferlab.data.splits import stratified_split, subsample_per_class
from transferlab.data.transforms import AugmentSpec, parse_augment
from transferlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: How many unreadable files a message or log line names (the count is always given).
SHOW_FILES = 5


@register_data
class ImageFolderDataModule(FileDataModule):
    """Images read from class folders with PIL, augmented and resized by torchvision transforms v2.

    The folder tree is read when the module is built, so a missing root, an empty class folder or a class
    absent from a split fails at once with the folder's path. Val/test folders that are absent are carved,
    stratified and seeded, from ``train/`` (or from the single pool).

    ``setup`` checks every file's header (no pixel decoding, see
    :func:`~transferlab.data.image_datasets.unreadable_reason`) before splitting. Unreadable files stop the run
    with their names (``on_corrupt="fail"``, the default), or are left out, counted and logged
    (``on_corrupt="skip"``); a file that passes the check but fails to decode later is handled the same way
    (with ``skip`` it is dropped from its batch and logged).

    Args:
        root: The root folder.
        data_config: Backbone preprocessing (mean/std, interpolation, crop_pct, channels).
        options: Common options.
        augment: Training augmentation.
        shots_per_class: Keep this many training samples per class (``None`` = all).
        label_fraction: Keep this fraction of each class's training samples (``None`` = all).
        val_fraction: Fraction of each class carved for validation when there is no ``val/`` folder.
        test_fraction: Fraction of each class carved for testing when there is no ``test/`` folder.
        on_corrupt: ``fail`` or ``skip`` unreadable image files (see above).
        decoded_cache: Decode every image once into a memory-mapped file (:mod:`~transferlab.data.decoded_cache`;
            ``None`` = off, decode every epoch).

    Raises:
        DataError: on a missing or malformed folder tree.
        ConfigError: on bad fractions.

    """

    name = "image_folder"
    KEYS = ("root", "shots_per_class", "label_fraction", "val_fraction", "test_fraction", *FILE_KEYS)

    def __init__(
        self,
        root: str | Path,
        data_config: DataConfig,
        options: CommonOptions,
        augment: AugmentSpec | None = None,
        *,
        shots_per_class: int | None = None,
        label_fraction: float | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        on_corrupt: OnCorrupt = "fail",
        decoded_cache: DecodedCacheOptions | None = None,
    ) -> None:
        tree = read_tree(Path(root).expanduser())
        super().__init__(
            options,
            augment or AugmentSpec(),
            tree.class_names,
            data_config,
            on_corrupt=on_corrupt,
            decoded_cache=decoded_cache,
        )
        if shots_per_class is not None and label_fraction is not None:
            raise ConfigError("data.shots_per_class and data.label_fraction are both set; leave one null.")
        self.tree: FolderTree = tree
        self.val_fraction = val_fraction if "val" not in tree.splits else 0.0
        self.test_fraction = test_fraction if "test" not in tree.splits else 0.0
        check_split_fractions(self.val_fraction, self.test_fraction)
        self.shots_per_class = shots_per_class
        self.label_fraction = label_fraction
        self.samples = self._scan()

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], data_config: DataConfig) -> ImageFolderDataModule:
        """Build from the plain ``data`` config; see ``conf/data/image_folder.yaml``."""
        shots, fraction = read_shots(cfg)
        return cls(
            read_required_str(cfg, "root", "/path/to/images"),
            data_config,
            read_common(cfg, data_config.input_size, default_workers=2),
            parse_augment(cfg.get("augment")),
            shots_per_class=shots,
            label_fraction=fraction,
            val_fraction=read_float(cfg, "val_fraction", 0.15, low_open=True),  # type: ignore[arg-type]
            test_fraction=read_float(cfg, "test_fraction", 0.2, low_open=True),  # type: ignore[arg-type]
            **read_file_options(cfg),
        )

    def _scan(self) -> dict[str, list[tuple[Path, int]]]:
        """List the images of every split folder (raises on an empty class folder)."""
        return {split: list_samples(folder, self.class_names) for split, folder in self.tree.splits.items()}

    def _check_files(self) -> None:
        """Find unreadable files: raise naming them (``fail``) or leave them out and log them (``skip``).

        Raises:
            DataError: With ``fail``, naming the files; with ``skip``, when a class is left with no image.
        """
        paths = [path for split in self.samples.values() for path, _ in split]
        bad = find_unreadable(paths)
        if not bad:
            return
        shown = "; ".join(f"{p} ({reason})" for p, reason in bad[:SHOW_FILES])
        shown += "; …" if len(bad) > SHOW_FILES else ""
        if self.on_corrupt == "fail":
            raise DataError(
                f"data.root={self.tree.root}: {len(bad)} of {len(paths)} image files cannot be read: {shown}. "
                f"Fix: delete or replace them, or set data.on_corrupt=skip to leave them out (counted and logged)."
            )
        dropped = {p for p, _ in bad}
        self.skipped = [p for p, _ in bad]
        log.warning("data.on_corrupt=skip: left out %d unreadable of %d image files: %s", len(bad), len(paths), shown)
        for split, samples in self.samples.items():
            kept = [(p, label) for p, label in samples if p not in dropped]
            empty = sorted(set(range(self.num_classes)) - {label for _, label in kept})
            if empty:
                folder = self.tree.splits[split] / self.class_names[empty[0]]
                raise DataError(
                    f"class folder {folder} has no readable image left after data.on_corrupt=skip left out "
                    f"{len(bad)} unreadable files. Fix: add readable images to it, or delete the folder."
                )
            self.samples[split] = kept

    def setup(self, stage: str | None = None) -> None:
        """Check the files, split the listed images and attach the train/eval transforms (once)."""
        if self.is_setup:
            return
        self._check_files()
        pool_name = "all" if self.tree.pooled else "train"
        # One file list over every split folder; each split is a set of indices into it.
        order = [pool_name] + [s for s in ("val", "test") if s in self.samples]
        files = ImageFileList([s for split in order for s in self.samples[split]], self.on_corrupt)
        offsets = np.cumsum([0] + [len(self.samples[s]) for s in order])
        start = dict(zip(order, offsets[:-1].tolist(), strict=True))
        pool_labels = np.asarray([label for _, label in self.samples[pool_name]])
        split = stratified_split(pool_labels, self.val_fraction, self.test_fraction, self.options.seed)
        train = subsample_per_class(
            pool_labels,
            split.train,
            self.options.seed,
            shots_per_class=self.shots_per_class,
            label_fraction=self.label_fraction,
            class_names=self.class_names,
        )

        def own(name: str, carved: np.ndarray) -> np.ndarray:
            if name not in start or name == pool_name:
                return carved
            return np.arange(start[name], start[name] + len(self.samples[name]))

        self.build_splits(files, {"train": train, "val": own("val", split.val), "test": own("test", split.test)})
