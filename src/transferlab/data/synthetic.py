"""Seeded random images with learnable labels, held in memory: for speed tests and smoke runs.

Each class has a smooth random colour pattern (a 4×4 grid upsampled); a sample is its class pattern plus
pixel noise, so a linear probe on almost any features separates the classes and a model can fit them.

With ``multi_label: true`` an image carries several labels: label ``l`` is present with probability
:func:`label_frequencies` (0.5 for the first label down to 0.1 for the last: imbalanced, some images have no
label), and the image is a grey background plus the patterns of its present labels (each pattern's deviation
from grey, summed) and pixel noise. Labels are ``(N, L)`` float32 multi-hot rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from transferlab.backbones.base import DataConfig
from transferlab.data.base import TransferDataModule
from transferlab.data.options import (
    CommonOptions,
    check_keys,
    read_bool,
    read_common,
    read_float,
    read_int,
    read_mapping,
)
from transferlab.data.registry import register_data
from transferlab.data.tensor_loader import TensorImageDataset, pass_batch, to_uint8
from transferlab.data.transforms import AugmentSpec, normalization, parse_augment, tensor_augment

_PATTERN_SIDE = 4  # coarse grid of the class patterns: smooth after upsampling, distinct between classes


def class_patterns(num_classes: int, channels: int, image_size: int, seed: int) -> torch.Tensor:
    """One smooth pattern per class in [0.2, 0.8], shape ``(num_classes, channels, size, size)``."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, channels, _PATTERN_SIDE, _PATTERN_SIDE, generator=g)
    return 0.2 + 0.6 * F.interpolate(coarse, size=(image_size, image_size), mode="bilinear", align_corners=False)


def label_frequencies(num_labels: int, high: float = 0.5, low: float = 0.1) -> torch.Tensor:
    """How often each label is present in multi-label data: linearly from ``high`` (first) to ``low`` (last)."""
    if num_labels == 1:
        return torch.tensor([high])
    return torch.linspace(high, low, num_labels)


def sample_multilabel_images(
    patterns: torch.Tensor, n: int, noise: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` multi-label samples: grey + the present labels' pattern deviations + noise; float32 multi-hot labels."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, len(patterns), generator=g) < label_frequencies(len(patterns))).float()
    deviation = torch.einsum("nl,lchw->nchw", labels, patterns - 0.5)  # patterns lie in [0.2, 0.8] around grey
    images = 0.5 + deviation + noise * torch.randn(n, *patterns.shape[1:], generator=g)
    return to_uint8(images.clamp_(0, 1)), labels


def sample_images(patterns: torch.Tensor, n: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples with balanced labels: the class pattern plus Gaussian pixel noise, as uint8 images."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % len(patterns)
    labels = labels[torch.randperm(n, generator=g)]
    images = patterns[labels] + noise * torch.randn(n, *patterns.shape[1:], generator=g)
    return to_uint8(images.clamp_(0, 1)), labels


@register_data
class SyntheticDataModule(TransferDataModule):
    """Random, learnable images in memory.

    Args:
        data_config: Backbone preprocessing (mean/std, channels).
        options: Common options.
        augment: Training augmentation.
        num_classes: Number of classes.
        num_train: Training samples.
        num_val: Validation samples.
        num_test: Test samples.
        noise: Standard deviation of the pixel noise (patterns lie in [0.2, 0.8]).
        multi_label: Several labels per image (see the module docstring) instead of one class.

    """

    name = "synthetic"
    input_geometry = "square"
    KEYS = ("num_classes", "num_samples", "noise", "multi_label")
    collate_fn = staticmethod(pass_batch)

    def __init__(
        self,
        data_config: DataConfig,
        options: CommonOptions,
        augment: AugmentSpec | None = None,
        *,
        num_classes: int = 10,
        num_train: int = 512,
        num_val: int = 128,
        num_test: int = 128,
        noise: float = 0.1,
        multi_label: bool = False,
    ) -> None:
        prefix = "label" if multi_label else "class"
        super().__init__(options, augment or AugmentSpec(), [f"{prefix}_{i}" for i in range(num_classes)])
        self.multi_label = multi_label
        self.data_config = data_config
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.noise = noise
        self.mean, self.std = normalization(data_config)
        self.augment_fn = tensor_augment(self.augment, options.image_size, data_config)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], data_config: DataConfig) -> SyntheticDataModule:
        """Build from the plain ``data`` config; see ``conf/data/synthetic.yaml``.

        Raises:
            ConfigError: on a bad value, e.g. an unknown split under ``num_samples``.

        """
        samples = read_mapping(cfg, "num_samples")  # null: the default sizes
        check_keys(samples, ("train", "val", "test"), where="data.num_samples")
        sizes = {
            s: read_int(samples, s, d, minimum=1, where="data.num_samples")
            for s, d in (("train", 512), ("val", 128), ("test", 128))
        }
        return cls(
            data_config,
            read_common(cfg, data_config.input_size, default_workers=0),
            parse_augment(cfg.get("augment")),
            num_classes=read_int(cfg, "num_classes", 10, minimum=2),  # type: ignore[arg-type]
            num_train=sizes["train"],  # type: ignore[arg-type]
            num_val=sizes["val"],  # type: ignore[arg-type]
            num_test=sizes["test"],  # type: ignore[arg-type]
            noise=read_float(cfg, "noise", 0.1, high=10.0),  # type: ignore[arg-type]
            multi_label=bool(read_bool(cfg, "multi_label", False)),
        )

    def setup(self, stage: str | None = None) -> None:
        """Generate the three splits (once); each split has its own seeded stream."""
        if self.is_setup:
            return
        seed, size = self.options.seed, self.options.image_size
        patterns = class_patterns(self.num_classes, self.data_config.in_chans, size, seed)
        sets = {}
        sample = sample_multilabel_images if self.multi_label else sample_images
        for i, (split, n) in enumerate(self.sizes.items()):
            images, labels = sample(patterns, n, self.noise, seed * 10 + i + 1)
            sets[split] = TensorImageDataset(  # multi-hot rows stay float32 there
                images, labels, self.mean, self.std, self.augment_fn if split == "train" else None
            )
        self.train_set, self.val_set, self.test_set = sets["train"], sets["val"], sets["test"]
        # generated from the seed: another seed is other data, with no sample in common
        self.members = {
            split: [f"synthetic/seed{seed}/{split}/{i}" for i in range(n)] for split, n in self.sizes.items()
        }
