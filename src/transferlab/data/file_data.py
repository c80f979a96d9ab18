"""What every data source read from image files shares: the colour mode, the transforms, unreadable files, splits.

An image folder and a label file differ only in how they find the files and their labels. Both subclass
:class:`FileDataModule`, list ``(path, label)`` samples, and hand the split indices to :meth:`FileDataModule.
build_splits`, which attaches the train/eval pipelines and records the split membership (``split.json``).
A label is an ``int`` (one class per image) or a multi-hot ``float32`` vector (multi-label files).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from transferlab.backbones.base import DataConfig
from transferlab.data.base import TransferDataModule
from transferlab.data.image_datasets import ON_CORRUPT, ImageFileList, OnCorrupt, TransformedView, collate_readable
from transferlab.data.options import CommonOptions, read_choice
from transferlab.data.transforms import AugmentSpec, eval_transform, train_transform
from transferlab.errors import ConfigError

log = logging.getLogger(__name__)

FILE_KEYS: tuple[str, ...] = ("on_corrupt",)
"""Keys every file data source accepts besides the common ones (see :func:`read_file_options`)."""


def read_file_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Typed keyword arguments of :class:`FileDataModule` from the plain ``data`` config.

    Raises:
        ConfigError: On a bad value, naming ``data.<key>``.
    """
    return {"on_corrupt": read_choice(cfg, "on_corrupt", "fail", ON_CORRUPT)}


class FileDataModule(TransferDataModule):
    """Shared behaviour of data modules that decode image files (see the module docstring).

    Args:
        options: Common options.
        augment: Training augmentation.
        class_names: Class names, index-aligned with labels.
        data_config: Backbone preprocessing (mean/std, interpolation, crop_pct, channels).
        on_corrupt: ``fail`` or ``skip`` unreadable image files.

    Raises:
        ConfigError: On an unknown ``on_corrupt``.
    """

    KEYS: ClassVar[tuple[str, ...]] = FILE_KEYS
    collate_fn = staticmethod(collate_readable)

    def __init__(
        self,
        options: CommonOptions,
        augment: AugmentSpec,
        class_names: Sequence[str],
        data_config: DataConfig,
        *,
        on_corrupt: OnCorrupt = "fail",
    ) -> None:
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(f"data.on_corrupt={on_corrupt!r}: choose one of {', '.join(ON_CORRUPT)}.")
        super().__init__(options, augment, list(class_names))
        self.data_config = data_config
        self.on_corrupt: OnCorrupt = on_corrupt
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

        Args:
            files: Every sample of every split, in one list.
            indices: ``train``, ``val`` and ``test`` → indices into ``files``.
        """
        self.train_set = TransformedView(files, indices["train"], self.train_tf, self.mode)
        self.val_set = TransformedView(files, indices["val"], self.eval_tf, self.mode)
        self.test_set = TransformedView(files, indices["test"], self.eval_tf, self.mode)
        paths = [str(Path(path).resolve()) for path, _ in files.samples]
        self.members = {split: [paths[int(i)] for i in indices[split]] for split in ("train", "val", "test")}
