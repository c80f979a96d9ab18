"""scikit-learn's bundled 8×8 handwritten digits, held in memory: the offline default data set.

1,797 images of 10 classes ship inside scikit-learn, so runs and tests need no download. The images are
converted and resized once at ``setup``; batches come from
:class:`~transferlab.data.tensor_loader.TensorImageDataset`.

Example:
    >>> dm = build_data({"name": "digits", "classes": [5, 6, 7, 8, 9], "shots_per_class": 5}, DataConfig())
    >>> dm.setup(); dm.class_names
    ['5', '6', '7', '8', '9']

"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.backbones.base import DataConfig
from transferlab.data.base import TransferDataModule
from transferlab.data.options import CommonOptions, check_split_fractions, read_common, read_float, read_shots
from transferlab.data.registry import register_data
from transferlab.data.splits import stratified_split, subsample_per_class
from transferlab.data.tensor_loader import TensorImageDataset, pass_batch, to_uint8
from transferlab.data.transforms import AugmentSpec, normalization, parse_augment, tensor_augment
from transferlab.errors import ConfigError

DIGITS = tuple(range(10))


def parse_classes(value: Any) -> tuple[int, ...]:
    """Validate ``data.classes``: ``None`` (all ten) or a list of distinct digits 0..9, kept in that order.

    Raises:
        ConfigError: on a value that is not a digit, a duplicate, or an empty list.

    """
    if value is None:
        return DIGITS
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ConfigError(
            f"data.classes={value!r}: expected null (all digits) or a list of digits 0..9. Fix: data.classes=[0,1,2]."
        )
    for digit in value:
        if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit <= 9:
            raise ConfigError(f"data.classes: {digit!r} is not a digit 0..9. Fix: e.g. data.classes=[5,6,7,8,9].")
    if len(set(value)) != len(value):
        raise ConfigError(f"data.classes={list(value)}: a digit is listed twice; list each class once.")
    return tuple(value)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    # Parsed once per process: a sweep builds many data modules, and the CSV parse is the slow part.
    from sklearn.datasets import load_digits  # deferred: importing sklearn costs ~0.5 s

    bunch = load_digits()
    return bunch.images, bunch.target


def load_digit_images(classes: Sequence[int]) -> tuple[torch.Tensor, np.ndarray]:
    """Load the digits of ``classes`` as float images in [0, 1], shape ``(N, 1, 8, 8)``, with digit labels."""
    all_images, all_digits = _digits_arrays()
    keep = np.isin(all_digits, classes)
    images = torch.from_numpy(all_images[keep]).float().div_(16.0).unsqueeze(1)  # pixel values are 0..16
    return images, all_digits[keep]


@register_data
class DigitsDataModule(TransferDataModule):
    """In-memory 8×8 digits, resized once, normalised per batch with the backbone's statistics.

    Args:
        data_config: Backbone preprocessing (mean/std, channels).
        options: Common options (``image_size`` is the square side the digits are upsampled to).
        augment: Training augmentation (per sample, on the small in-memory tensors).
        classes: Digits to keep; labels are remapped to ``0..k-1`` in this order.
        shots_per_class: Keep this many training samples per class (``None`` = all).
        label_fraction: Keep this fraction of each class's training samples (``None`` = all).
        val_fraction: Fraction of each class held out for validation.
        test_fraction: Fraction of each class held out for testing.

    Raises:
        ConfigError: on bad classes, fractions, or both ``shots_per_class`` and ``label_fraction``.

    """

    name = "digits"
    input_geometry = "square"  # 8×8 arrays upsampled whole: predict resizes a digit image the same way
    input_mode = "L"
    KEYS = ("classes", "shots_per_class", "label_fraction", "val_fraction", "test_fraction")
    collate_fn = staticmethod(pass_batch)

    def __init__(
        self,
        data_config: DataConfig,
        options: CommonOptions,
        augment: AugmentSpec | None = None,
        *,
        classes: Sequence[int] | None = None,
        shots_per_class: int | None = None,
        label_fraction: float | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
    ) -> None:
        self.classes = parse_classes(classes)
        super().__init__(options, augment or AugmentSpec(), [str(d) for d in self.classes])
        if shots_per_class is not None and label_fraction is not None:
            raise ConfigError("data.shots_per_class and data.label_fraction are both set; leave one null.")
        check_split_fractions(val_fraction, test_fraction)
        self.data_config = data_config
        self.shots_per_class = shots_per_class
        self.label_fraction = label_fraction
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.mean, self.std = normalization(data_config)  # checked now, before any training starts
        self.augment_fn = tensor_augment(self.augment, options.image_size, data_config)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], data_config: DataConfig) -> DigitsDataModule:
        """Build from the plain ``data`` config; see ``conf/data/digits.yaml``."""
        shots, fraction = read_shots(cfg)
        return cls(
            data_config,
            read_common(cfg, data_config.input_size, default_workers=0),
            parse_augment(cfg.get("augment")),
            classes=parse_classes(cfg.get("classes")),
            shots_per_class=shots,
            label_fraction=fraction,
            val_fraction=read_float(cfg, "val_fraction", 0.15, low_open=True),  # type: ignore[arg-type]
            test_fraction=read_float(cfg, "test_fraction", 0.2, low_open=True),  # type: ignore[arg-type]
        )

    def setup(self, stage: str | None = None) -> None:
        """Load, split, subsample and resize the digits (once; later calls return at once)."""
        if self.is_setup:
            return
        images, digits = load_digit_images(self.classes)
        # Split on the digit itself, not the remapped label: a digit's test samples are then the same
        # whichever other classes are kept.
        split = stratified_split(digits, self.val_fraction, self.test_fraction, self.options.seed)
        train = subsample_per_class(
            digits,
            split.train,
            self.options.seed,
            shots_per_class=self.shots_per_class,
            label_fraction=self.label_fraction,
            class_names=[str(d) for d in range(10)],
        )
        size = self.options.image_size
        # Bilinear whatever the backbone prefers: upsampling 8 px, bicubic rings around the strokes.
        images = to_uint8(
            F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
        )
        remap = np.full(10, -1, dtype=np.int64)
        remap[list(self.classes)] = np.arange(len(self.classes))
        labels = torch.from_numpy(remap[digits])

        def subset(idx: np.ndarray, augment: bool) -> TensorImageDataset:
            t = torch.from_numpy(idx)
            return TensorImageDataset(images[t], labels[t], self.mean, self.std, self.augment_fn if augment else None)

        self.train_set = subset(train, augment=True)
        self.val_set = subset(split.val, augment=False)
        self.test_set = subset(split.test, augment=False)
        # ids: the position in the whole bundled set, the same whichever classes are kept
        positions = np.flatnonzero(np.isin(_digits_arrays()[1], self.classes))
        self.members = {
            name: [f"digits/{positions[i]}" for i in idx]
            for name, idx in (("train", train), ("val", split.val), ("test", split.test))
        }
