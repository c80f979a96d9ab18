"""torchvision's classification data sets by name (CIFAR10, MNIST, Flowers102, …), one generic module.

The constructors disagree on how to ask for a split (``train=True`` vs ``split="trainval"``) and on where the
labels live; :data:`TORCHVISION_SETS` records that per set, so the module itself has no per-set branches.
Nothing downloads unless ``data.download=true``; a missing copy is a :class:`~transferlab.errors.DataError`
that says where it looked and what to do instead (the machines this runs on are often offline).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from transferlab.backbones.base import DataConfig
from transferlab.data.base import TransferDataModule
from transferlab.data.image_datasets import TransformedView
from transferlab.data.options import (
    CommonOptions,
    read_bool,
    read_common,
    read_float,
    read_required_str,
    read_shots,
)
from transferlab.data.registry import register_data
from transferlab.data.splits import stratified_split, subsample_per_class
from transferlab.data.transforms import AugmentSpec, eval_transform, parse_augment, train_transform
from transferlab.errors import ConfigError, DataError


@dataclass(frozen=True)
class TorchvisionSet:
    """How to build one torchvision data set.

    Attributes:
        num_classes: Number of classes (known without the files, so the head can be sized before setup).
        train: Constructor arguments of each split pooled for training (val is carved from the pool).
        test: Constructor arguments of the test split.
        labels_attr: Attribute holding the labels of all samples (read without decoding images).
        classes_attr: Attribute holding the class names, if the set has one.

    """

    num_classes: int
    train: tuple[dict[str, Any], ...]
    test: dict[str, Any]
    labels_attr: str
    classes_attr: str | None = "classes"


_TRAIN_FLAG = ({"train": True},), {"train": False}
_SPLIT = ({"split": "train"},), {"split": "test"}

TORCHVISION_SETS: dict[str, TorchvisionSet] = {
    "CIFAR10": TorchvisionSet(10, *_TRAIN_FLAG, labels_attr="targets"),
    "CIFAR100": TorchvisionSet(100, *_TRAIN_FLAG, labels_attr="targets"),
    "MNIST": TorchvisionSet(10, *_TRAIN_FLAG, labels_attr="targets"),
    "FashionMNIST": TorchvisionSet(10, *_TRAIN_FLAG, labels_attr="targets"),
    "KMNIST": TorchvisionSet(10, *_TRAIN_FLAG, labels_attr="targets"),
    "SVHN": TorchvisionSet(10, *_SPLIT, labels_attr="labels", classes_attr=None),
    "STL10": TorchvisionSet(10, *_SPLIT, labels_attr="labels"),
    "Food101": TorchvisionSet(101, *_SPLIT, labels_attr="_labels"),
    # Sets with an official val split pool it with train: their train split alone is tiny (10 per class).
    "Flowers102": TorchvisionSet(
        102, ({"split": "train"}, {"split": "val"}), {"split": "test"}, "_labels", classes_attr=None
    ),
    "DTD": TorchvisionSet(47, ({"split": "train"}, {"split": "val"}), {"split": "test"}, "_labels"),
    "OxfordIIITPet": TorchvisionSet(37, ({"split": "trainval"},), {"split": "test"}, "_labels"),
}
"""Supported sets: name → constructor recipe. Names match ``torchvision.datasets`` (case-insensitive here)."""

_ALTERNATIVES = "Fix: point data.root at a copy, set data.download=true (needs network), or use data=image_folder"


def resolve_name(name: Any) -> str:
    """Canonical set name (``cifar10`` → ``CIFAR10``).

    Raises:
        ConfigError: on an unknown name, listing the supported ones and the closest match.

    """
    by_lower = {k.lower(): k for k in TORCHVISION_SETS}
    key = str(name).lower().replace("_", "").replace("-", "")
    if key in by_lower:
        return by_lower[key]
    close = difflib.get_close_matches(key, list(by_lower), n=1)
    hint = f"did you mean '{by_lower[close[0]]}'? " if close else ""
    raise ConfigError(
        f"data.dataset={name!r}: not a supported torchvision data set; {hint}choose one of "
        f"{', '.join(TORCHVISION_SETS)}. Fix: data.dataset={by_lower[close[0]] if close else 'CIFAR10'}, "
        "or data=image_folder for your own images."
    )


def dataset_labels(ds: Dataset, attr: str) -> np.ndarray:
    """Labels of every sample of a torchvision data set, read from ``attr`` (no image decoding)."""
    labels = getattr(ds, attr, None)
    if labels is None:  # a set whose attribute moved in a newer torchvision: decode once, slowly but right
        labels = [ds[i][1] for i in range(len(ds))]  # type: ignore[arg-type]
    return np.asarray(labels, dtype=np.int64)


@register_data
class TorchvisionDataModule(TransferDataModule):
    """A torchvision classification set; val carved (stratified, seeded) from its training pool.

    Args:
        dataset: Set name (a key of :data:`TORCHVISION_SETS`, any case).
        root: Folder holding (or receiving) the files.
        data_config: Backbone preprocessing.
        options: Common options.
        augment: Training augmentation.
        download: Download missing files in ``prepare_data`` (needs network).
        val_fraction: Fraction of each class of the training pool held out for validation.
        shots_per_class: Keep this many training samples per class (``None`` = all).
        label_fraction: Keep this fraction of each class's training samples (``None`` = all).

    Raises:
        ConfigError: on an unknown set name.

    """

    name = "torchvision"
    KEYS = ("dataset", "root", "download", "val_fraction", "shots_per_class", "label_fraction")

    def __init__(
        self,
        dataset: str,
        root: str | Path,
        data_config: DataConfig,
        options: CommonOptions,
        augment: AugmentSpec | None = None,
        *,
        download: bool = False,
        val_fraction: float = 0.1,
        shots_per_class: int | None = None,
        label_fraction: float | None = None,
    ) -> None:
        self.dataset = resolve_name(dataset)
        self.spec = TORCHVISION_SETS[self.dataset]
        super().__init__(options, augment or AugmentSpec(), [str(i) for i in range(self.spec.num_classes)])
        self.root = Path(root).expanduser()
        self.download = download
        self.val_fraction = val_fraction
        self.shots_per_class = shots_per_class
        self.label_fraction = label_fraction
        self.mode = "RGB" if data_config.in_chans == 3 else "L"
        self.train_tf = train_transform(self.augment, options.image_size, data_config)
        self.eval_tf = eval_transform(options.image_size, data_config)
        self._prepared = False

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], data_config: DataConfig) -> TorchvisionDataModule:
        """Build from the plain ``data`` config; see ``conf/data/cifar10.yaml`` and its siblings."""
        shots, fraction = read_shots(cfg)
        return cls(
            read_required_str(cfg, "dataset", "CIFAR10"),
            read_required_str(cfg, "root", "/path/to/data"),
            data_config,
            read_common(cfg, data_config.input_size, default_workers=2),
            parse_augment(cfg.get("augment")),
            download=read_bool(cfg, "download", False),  # type: ignore[arg-type]
            val_fraction=read_float(cfg, "val_fraction", 0.1, high=0.9, low_open=True),  # type: ignore[arg-type]
            shots_per_class=shots,
            label_fraction=fraction,
        )

    @property
    def title(self) -> str:
        """Name shown by :meth:`describe`."""
        return f"torchvision {self.dataset}"

    def _construct(self, kwargs: dict[str, Any], download: bool) -> Dataset:
        import torchvision.datasets  # deferred: only this module needs the data set classes

        cls = getattr(torchvision.datasets, self.dataset)
        try:
            return cls(str(self.root), download=download, **kwargs)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError; torchvision raises RuntimeError too
            exc_text = " ".join(str(exc).split())  # MNIST lists every mirror on its own line: keep one paragraph
            if download:
                raise DataError(
                    f"data set {self.dataset}: download into {self.root} failed ({exc_text}); the machine "
                    f"may be offline. Fix: point data.root at a copy (with data.download=false), "
                    f"or use data=image_folder."
                ) from exc
            raise DataError(
                f"data set {self.dataset} not found under {self.root} ({exc_text}). {_ALTERNATIVES}."
            ) from exc

    def check_sources(self) -> None:
        """Without ``download``, the root folder must exist (its files are opened in ``setup``).

        Raises:
            DataError: when ``root`` is not a folder and nothing would download into it.

        """
        if not self.download and not self.root.is_dir():
            raise DataError(
                f"data.root={self.root}: folder not found, so data set {self.dataset} cannot be read. {_ALTERNATIVES}."
            )

    def prepare_data(self) -> None:
        """Download the files if ``download`` is set (Lightning calls this on one process only)."""
        if self.download:
            for kwargs in (*self.spec.train, self.spec.test):
                self._construct(kwargs, download=True)
        self._prepared = True

    def setup(self, stage: str | None = None) -> None:
        """Open the files, carve val from the training pool and subsample it (once).

        Raises:
            DataError: when the files are missing (or the download fails).

        """
        if self.is_setup:
            return
        if self.download and not self._prepared:  # called outside a Trainer, which would have prepared
            self.prepare_data()
        parts = [self._construct(kwargs, download=False) for kwargs in self.spec.train]
        test = self._construct(self.spec.test, download=False)
        pool: Dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
        labels = np.concatenate([dataset_labels(p, self.spec.labels_attr) for p in parts])
        names = getattr(parts[0], self.spec.classes_attr, None) if self.spec.classes_attr else None
        if names is not None and len(names) == self.spec.num_classes:
            self.class_names = [str(n) for n in names]
        split = stratified_split(labels, self.val_fraction, 0.0, self.options.seed)
        train = subsample_per_class(
            labels,
            split.train,
            self.options.seed,
            shots_per_class=self.shots_per_class,
            label_fraction=self.label_fraction,
            class_names=self.class_names,
        )
        self.train_set = TransformedView(pool, train, self.train_tf, self.mode)
        self.val_set = TransformedView(pool, split.val, self.eval_tf, self.mode)
        self.test_set = TransformedView(test, np.arange(len(test)), self.eval_tf, self.mode)  # type: ignore[arg-type]
        self.members = {
            "train": [f"{self.name}/train/{i}" for i in train],
            "val": [f"{self.name}/train/{i}" for i in split.val],
            "test": [f"{self.name}/test/{i}" for i in range(len(test))],  # type: ignore[arg-type]
        }
