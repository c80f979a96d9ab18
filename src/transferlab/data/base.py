"""The data contract: every data module is a LightningDataModule that knows its classes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from transferlab.backbones.base import DataConfig
from transferlab.data.options import WHERE, CommonOptions
from transferlab.data.samplers import balanced_sample_weights
from transferlab.data.tensor_loader import TensorImageDataset, make_loader
from transferlab.data.transforms import AugmentSpec
from transferlab.errors import ConfigError

ON_DEVICE_AUTO_MAX_BYTES = 2 * 1024**3
"""``data.on_device=null`` (auto) holds in-memory splits on the GPU up to this size (images + labels)."""


def fits_on_device(setting: bool | None, device: torch.device, nbytes: int) -> bool:
    """Whether in-memory tensors of ``nbytes`` go to ``device`` under ``data.on_device=setting``."""
    if setting is False or device.type == "cpu":
        return False
    return setting is True or nbytes <= ON_DEVICE_AUTO_MAX_BYTES


@runtime_checkable
class TransferData(Protocol):
    """What the engine needs from a data module, beyond ``LightningDataModule``.

    Attributes:
        num_classes: Number of classes the head must predict (known after ``setup``; every module of this
            package knows it from construction).
        class_names: Human-readable class names, index-aligned with labels.
        augment_enabled: Whether training batches are randomly augmented (features may be cached only if not).

    """

    num_classes: int
    class_names: list[str]
    augment_enabled: bool

    def setup(self, stage: str | None = None) -> None:  # noqa: D102 - LightningDataModule's own
        ...

    def train_dataloader(self): ...  # noqa: D102

    def val_dataloader(self): ...  # noqa: D102

    def test_dataloader(self): ...  # noqa: D102

    def describe(self) -> str:
        """One line for the run log: split sizes and classes."""
        ...


DataModule = pl.LightningDataModule


class TransferDataModule(pl.LightningDataModule):
    """Shared behaviour of this package's data modules: options, class list, loaders, ``describe``.

    Subclasses set ``name`` (the registry name) and ``KEYS`` (their keys beyond the common ones), implement
    ``from_config`` (plain config → typed constructor arguments) and ``setup`` (fill ``train_set``,
    ``val_set``, ``test_set``; called once per stage by Lightning, so it must be idempotent).

    Args:
        options: The common options (batch size, workers, image size, seed, pinning).
        augment: Training augmentation.
        class_names: Class names, index-aligned with labels.

    """

    name: ClassVar[str] = ""
    KEYS: ClassVar[tuple[str, ...]] = ()
    collate_fn: ClassVar[Callable[[Any], Any] | None] = None
    #: Whether a sample carries a multi-hot ``float32`` vector of its labels (several per image) instead of
    #: one ``int64`` class index; the assembly then builds a multi-label task. Set per instance by sources
    #: that read it from the data (a label file).
    multi_label: bool = False
    #: How an image reached the model, which ``predict`` and ``export`` repeat (deploy/preprocess.py):
    #: ``crop`` = resize the shorter side, then centre-crop (image files); ``square`` = resize the whole
    #: image to ``image_size`` (square in-memory arrays).
    input_geometry: ClassVar[str] = "crop"
    #: PIL colour mode of the source images (``None``: ``RGB`` or ``L`` by the backbone's ``in_chans``).
    input_mode: ClassVar[str | None] = None

    def __init__(self, options: CommonOptions, augment: AugmentSpec, class_names: list[str]) -> None:
        super().__init__()
        self.options = options
        self.augment = augment
        self.class_names = list(class_names)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.data_device: torch.device | None = None  # set by place_on when the splits live on a GPU
        # split → sample ids, stable across runs and configs (a file's path, "<set>/<part>/<index>"); set by
        # ``setup`` and stored with the run as split.json, so eval can tell the run's test split from other data
        self.members: dict[str, list[str]] | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], data_config: DataConfig) -> TransferDataModule:
        """Build the module from the plain ``data`` config (keys already checked by the factory).

        Raises:
            ConfigError: on a bad value.
            DataError: when the data cannot be found.

        """
        raise NotImplementedError

    def check_sources(self) -> None:
        """Check that the data can be found, without reading it (for ``transferlab validate``).

        Building a module reads no data (an image folder lists its files, nothing more); ``setup`` does.
        Modules whose files are opened only in ``setup`` check here what they can without opening them.

        Raises:
            DataError: when the data cannot be found.

        """

    @property
    def num_classes(self) -> int:
        """Number of classes the head predicts."""
        return len(self.class_names)

    @property
    def augment_enabled(self) -> bool:
        """Whether training batches are randomly augmented."""
        return self.augment.enabled

    @property
    def title(self) -> str:
        """Name shown by :meth:`describe` (the registry name unless a subclass says more)."""
        return self.name

    @property
    def is_setup(self) -> bool:
        """Whether ``setup`` has built the splits."""
        return self.train_set is not None

    def train_targets(self) -> np.ndarray:
        """The training split's labels: ``(N,)`` class indices, or ``(N, C)`` 0/1 for multi-label data.

        What class weights (``task.class_weights=auto``) and the balanced sampler count. Call after ``setup``.

        Raises:
            RuntimeError: Before ``setup``.
        """
        if self.train_set is None:
            raise RuntimeError(f"{type(self).__name__}.train_targets() called before setup(); call setup().")
        return split_targets(self.train_set)

    def fingerprint(self) -> str:
        """A digest of which samples are in which split (part of the feature cache's key). Call after ``setup``.

        In-memory sets name their samples by stable ids (``split.json``'s); sources read from files add each
        file's modification time and size, so an edited image under the same config gets new features.
        """
        return hashlib.sha256(json.dumps(self.members, sort_keys=True).encode()).hexdigest()

    def place_on(self, device: torch.device) -> str | None:
        """Hold the in-memory splits on ``device`` when it is a GPU and ``data.on_device`` allows it.

        ``data.on_device``: ``null`` (auto) moves them when they take at most :data:`ON_DEVICE_AUTO_MAX_BYTES`,
        ``true`` always, ``false`` never. Batches are then cut on the GPU (no host → device copy per step);
        loaders use no worker processes and no pinning (CUDA tensors can not be shared with forked workers).
        Call after ``setup``.

        Returns:
            A line for the run log, or ``None`` when nothing was decided (a CPU, or ``false``).

        Raises:
            ConfigError: ``data.on_device=true`` for a data set read from files.
        """
        setting = self.options.on_device
        splits = [d for d in (self.train_set, self.val_set, self.test_set) if d is not None]
        tensors = [d for d in splits if isinstance(d, TensorImageDataset)]
        if setting is True and (not splits or len(tensors) < len(splits)):
            raise ConfigError(
                f"{WHERE}.on_device=true: data={self.name} reads its images from files; only in-memory data "
                f"sets (digits, synthetic) can be held on the GPU. Fix: {WHERE}.on_device=null."
            )
        if setting is False or device.type == "cpu" or not tensors:
            return None
        nbytes = sum(d.nbytes for d in tensors)
        if not fits_on_device(setting, device, nbytes):
            return (
                f"data: {nbytes / 2**30:.1f} GiB of images stay in host memory (over the "
                f"{ON_DEVICE_AUTO_MAX_BYTES / 2**30:.0f} GiB of {WHERE}.on_device=null); {WHERE}.on_device=true "
                "holds them on the GPU anyway"
            )
        for dataset in tensors:
            dataset.to(device)
        self.data_device = device
        return f"data: {nbytes / 2**20:.0f} MiB of images held on {device} ({WHERE}.on_device); batches are cut there"

    def _loader(self, dataset: Dataset | None, split: str) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.{split}_dataloader() called before setup(); call setup().")
        o = self.options
        train = split == "train"
        on_device = self.data_device is not None
        return make_loader(
            dataset,
            batch_size=o.batch_size,
            shuffle=train,
            seed=o.seed,
            num_workers=0 if on_device else o.num_workers,
            pin_memory=o.pin_memory and not on_device,
            collate_fn=type(self).collate_fn,
            train=train,
            sample_weights=self.sample_weights() if train else None,
        )

    def sample_weights(self) -> np.ndarray | None:
        """Per-sample weights of the training draws under ``data.sampler=balanced`` (``None``: a plain shuffle)."""
        if self.options.sampler != "balanced":
            return None
        return balanced_sample_weights(self.train_targets())

    def train_dataloader(self) -> DataLoader:
        """Return shuffled (seeded) training batches, augmented when augmentation is on."""
        return self._loader(self.train_set, "train")

    def val_dataloader(self) -> DataLoader:
        """Return validation batches in a fixed order."""
        return self._loader(self.val_set, "val")

    def test_dataloader(self) -> DataLoader:
        """Return test batches in a fixed order."""
        return self._loader(self.test_set, "test")

    def describe(self) -> str:
        """One line for the run log, e.g. ``digits: 10 classes, train 1150 / val 270 / test 360, 64 px``."""
        if not self.is_setup:
            sizes = "not set up"
        else:
            sets = {"train": self.train_set, "val": self.val_set, "test": self.test_set}
            sizes = " / ".join(f"{split} {len(d)}" for split, d in sets.items())  # type: ignore[arg-type]
        names = ", ".join(self.class_names[:5]) + (", …" if self.num_classes > 5 else "")
        aug = "augment on" if self.augment_enabled else "augment off"
        return (
            f"{self.title}: {self.num_classes} classes ({names}), {sizes}, {self.options.image_size} px, "
            f"batch {self.options.batch_size}, {aug}"
        )


def split_targets(dataset: Dataset) -> np.ndarray:
    """Labels of a split's dataset without decoding an image (see :meth:`TransferDataModule.train_targets`).

    Reads ``labels`` of in-memory tensor sets, ``base.targets[indices]`` of a view of a file list or a
    torchvision set (through the view's label map); any other dataset is iterated once.
    """
    labels = getattr(dataset, "labels", None)
    if isinstance(labels, torch.Tensor):
        return labels.cpu().numpy()
    base, indices = getattr(dataset, "base", None), getattr(dataset, "indices", None)
    targets = getattr(base, "targets", None)
    if targets is not None and indices is not None:
        picked = np.asarray([np.asarray(targets[int(i)]) for i in indices])
        label_map = getattr(dataset, "label_map", None)
        return picked if label_map is None else np.asarray(label_map)[picked]
    out = []
    for i in range(len(dataset)):  # type: ignore[arg-type]
        item = dataset[i]
        if item is not None:
            out.append(np.asarray(item[1].cpu() if isinstance(item[1], torch.Tensor) else item[1]))
    return np.asarray(out)
