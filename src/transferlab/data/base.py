"""The data contract: every data module is a LightningDataModule that knows its classes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset

from transferlab.backbones.base import DataConfig
from transferlab.data.options import CommonOptions
from transferlab.data.tensor_loader import make_loader
from transferlab.data.transforms import AugmentSpec


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

    def __init__(self, options: CommonOptions, augment: AugmentSpec, class_names: list[str]) -> None:
        super().__init__()
        self.options = options
        self.augment = augment
        self.class_names = list(class_names)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

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

    def _loader(self, dataset: Dataset | None, split: str) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.{split}_dataloader() called before setup(); call setup().")
        o = self.options
        train = split == "train"
        return make_loader(
            dataset,
            batch_size=o.batch_size,
            shuffle=train,
            seed=o.seed,
            num_workers=o.num_workers,
            pin_memory=o.pin_memory,
            collate_fn=type(self).collate_fn,
            train=train,
        )

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
