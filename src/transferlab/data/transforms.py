"""Augmentation and preprocessing: the ``augment`` keys, and the train/eval pipelines built from them.

Normalisation always comes from the backbone's :class:`~transferlab.backbones.base.DataConfig`; nothing here
knows ImageNet statistics. Augmentation is off unless the data YAML turns a key on, so that a run without it
is deterministic and the training code may cache backbone features.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torchvision.transforms import v2

from transferlab.backbones.base import DataConfig
from transferlab.data.options import WHERE, check_keys
from transferlab.errors import ConfigError

AUGMENT_KEYS: tuple[str, ...] = (
    "random_resized_crop", "hflip", "rotate", "color_jitter", "trivial_augment", "rand_augment", "random_erasing",
)  # fmt: skip

_INTERPOLATION = {
    "nearest": v2.InterpolationMode.NEAREST,
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BICUBIC,
}


@dataclass(frozen=True)
class AugmentSpec:
    """Training-time augmentation; every field off by default.

    Attributes:
        random_resized_crop: Minimum area scale of a random resized crop (e.g. 0.8); ``None`` = no crop.
        hflip: Random horizontal flip (p = 0.5). Keep off for digits and text: they are not mirror-symmetric.
        rotate: Maximum random rotation in degrees (0 = off).
        color_jitter: Brightness/contrast/saturation jitter strength in [0, 1] (0 = off).
        trivial_augment: TrivialAugmentWide (one random photometric/geometric op per image).
        rand_augment: RandAugment magnitude (torchvision's, 2 ops per image) in [0, 30]; 0 = off.
        random_erasing: Probability of erasing one random box per image (torchvision's ``RandomErasing``, filled
            with 0 before normalisation); 0 = off.

    """

    random_resized_crop: float | None = None
    hflip: bool = False
    rotate: float = 0.0
    color_jitter: float = 0.0
    trivial_augment: bool = False
    rand_augment: int = 0
    random_erasing: float = 0.0

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is on (then training batches are random and features cannot be cached)."""
        return (
            self.random_resized_crop is not None
            or self.hflip
            or self.rotate > 0
            or self.color_jitter > 0
            or self.trivial_augment
            or self.rand_augment > 0
            or self.random_erasing > 0
        )


def parse_augment(raw: Mapping[str, Any] | None) -> AugmentSpec:
    """Validate the ``data.augment`` mapping.

    Args:
        raw: The plain mapping, or ``None`` for no augmentation.

    Raises:
        ConfigError: on an unknown key or a bad value, naming ``data.augment.<key>``.

    """
    if raw is None:
        return AugmentSpec()
    where = f"{WHERE}.augment"
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}={raw!r}: expected a group of keys ({', '.join(AUGMENT_KEYS)}), or null for none. "
            f"Fix: {where}.hflip=true."
        )
    check_keys(raw, AUGMENT_KEYS, where=where)

    def number(key: str, low: float, high: float) -> float:
        value = raw.get(key)
        value = 0.0 if value is None else value  # null reads as off
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(
                f"{where}.{key}={value!r}: expected a number in [{low:g}, {high:g}] (0 = off). Fix: {where}.{key}=0."
            )
        return float(value)

    def flag(key: str) -> bool:
        value = raw.get(key)
        value = False if value is None else value  # null reads as off
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{key}={value!r}: expected true or false. Fix: {where}.{key}=false.")
        return value

    crop = raw.get("random_resized_crop")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, (int, float)) or not 0 < crop <= 1):
        raise ConfigError(
            f"{where}.random_resized_crop={crop!r}: expected the minimum crop scale in (0, 1], or null for no crop. "
            f"Fix: {where}.random_resized_crop=0.8."
        )
    magnitude = number("rand_augment", 0.0, 30.0)
    if not magnitude.is_integer():
        raise ConfigError(
            f"{where}.rand_augment={raw.get('rand_augment')!r}: expected an integer magnitude in [0, 30] (0 = off). "
            f"Fix: {where}.rand_augment=9."
        )
    return AugmentSpec(
        rand_augment=int(magnitude),
        random_erasing=number("random_erasing", 0.0, 1.0),
        random_resized_crop=None if crop is None else float(crop),
        hflip=flag("hflip"),
        rotate=number("rotate", 0.0, 180.0),
        color_jitter=number("color_jitter", 0.0, 1.0),
        trivial_augment=flag("trivial_augment"),
    )


def interpolation_mode(data_config: DataConfig) -> v2.InterpolationMode:
    """Map ``DataConfig.interpolation`` to torchvision's enum.

    Raises:
        ConfigError: on an interpolation this package does not know.

    """
    try:
        return _INTERPOLATION[data_config.interpolation]
    except KeyError:
        raise ConfigError(
            f"backbone data_config.interpolation={data_config.interpolation!r}: choose one of "
            f"{', '.join(_INTERPOLATION)}."
        ) from None


def normalization(data_config: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std from the data config, shaped ``(C, 1, 1)`` for broadcasting over images.

    A one-channel backbone (``in_chans=1``) with RGB statistics gets their average.

    Raises:
        ConfigError: when mean/std do not match ``in_chans``.

    """
    mean = torch.tensor(data_config.mean, dtype=torch.float32)
    std = torch.tensor(data_config.std, dtype=torch.float32)
    if data_config.in_chans == 1 and mean.numel() == 3:
        mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
    if mean.numel() != data_config.in_chans or std.numel() != data_config.in_chans:
        raise ConfigError(
            f"backbone data_config: mean {data_config.mean} / std {data_config.std} do not match "
            f"in_chans={data_config.in_chans}; give one value per input channel."
        )
    return mean.view(-1, 1, 1), std.view(-1, 1, 1)


def normalize_images(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """A uint8 batch ``(B, C, H, W)`` → normalised float32 with ``mean``'s channel count, on ``x``'s device.

    The op sequence is torchvision's (``ToDtype(float32, scale=True)``: ``.to(float32).mul_(1 / 255)``, then
    ``Normalize``: ``.sub(mean).div_(std)``), so the result is bit-identical to the live PIL → torchvision eval
    pipeline. A grey batch (``C = 1``) broadcasts to the statistics' channels.

    Args:
        x: uint8 images.
        mean: ``(C', 1, 1)`` statistics (:func:`normalization`), on any device.
        std: The same shape as ``mean``.
    """
    mean, std = mean.to(x.device), std.to(x.device)
    y = x.to(torch.float32, memory_format=torch.contiguous_format).mul_(1.0 / 255)
    y = y.sub_(mean) if y.shape[-3] == mean.shape[0] else y.sub(mean)
    return y.div_(std)


def augment_ops(
    spec: AugmentSpec, image_size: int, interpolation: v2.InterpolationMode, *, include_crop: bool = True
) -> list[Callable[[Any], Any]]:
    """List the augmentation ops of ``spec``, for one image tensor (uint8 or float in [0, 1]).

    Args:
        spec: The augmentation settings.
        image_size: Output side of the random resized crop.
        interpolation: Resampling of the crop and the rotation.
        include_crop: Whether to include the random resized crop (file pipelines place it themselves).

    """
    ops: list[Callable[[Any], Any]] = []
    if include_crop and spec.random_resized_crop is not None:
        ops.append(
            v2.RandomResizedCrop(
                image_size, scale=(spec.random_resized_crop, 1.0), interpolation=interpolation, antialias=True
            )
        )
    if spec.hflip:
        ops.append(v2.RandomHorizontalFlip())
    if spec.rotate > 0:
        # Bilinear rather than the backbone's bicubic: rotation by small angles, bicubic over-shoots edges.
        ops.append(v2.RandomRotation(spec.rotate, interpolation=v2.InterpolationMode.BILINEAR))
    if spec.color_jitter > 0:
        s = spec.color_jitter
        ops.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s))
    if spec.trivial_augment:
        ops.append(v2.TrivialAugmentWide(interpolation=v2.InterpolationMode.BILINEAR))
    if spec.rand_augment > 0:
        ops.append(v2.RandAugment(num_ops=2, magnitude=spec.rand_augment, interpolation=v2.InterpolationMode.BILINEAR))
    if spec.random_erasing > 0:  # last: a box of the finished image
        ops.append(v2.RandomErasing(p=spec.random_erasing, value=0))
    return ops


def tensor_augment(spec: AugmentSpec, image_size: int, data_config: DataConfig) -> v2.Compose | None:
    """Per-sample augmentation of in-memory images already at ``image_size``; ``None`` when off.

    Raises:
        ConfigError: on an unknown interpolation in ``data_config``.

    """
    if not spec.enabled:
        return None
    return v2.Compose(augment_ops(spec, image_size, interpolation_mode(data_config)))


def eval_transform(image_size: int, data_config: DataConfig) -> v2.Compose:
    """PIL image → normalised float tensor: resize the shorter side to ``image_size / crop_pct``, centre-crop.

    Raises:
        ConfigError: on an unknown interpolation or mismatched mean/std in ``data_config``.

    """
    mean, std = normalization(data_config)
    resize = max(image_size, int(image_size / data_config.crop_pct + 0.5))
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(resize, interpolation=interpolation_mode(data_config), antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean.flatten().tolist(), std.flatten().tolist()),
        ]
    )


def train_transform(spec: AugmentSpec, image_size: int, data_config: DataConfig) -> v2.Compose:
    """PIL image → augmented, normalised float tensor.

    Without augmentation this is exactly :func:`eval_transform`, so train features equal eval features and
    may be cached. Geometry comes first (random resized crop, or the eval resize + centre crop), so the
    photometric ops run on the small image; they run on uint8 (what TrivialAugment's ops are defined on).

    Raises:
        ConfigError: on an unknown interpolation or mismatched mean/std in ``data_config``.

    """
    if not spec.enabled:
        return eval_transform(image_size, data_config)
    mean, std = normalization(data_config)
    interpolation = interpolation_mode(data_config)
    if spec.random_resized_crop is not None:
        geometry = [
            v2.RandomResizedCrop(
                image_size, scale=(spec.random_resized_crop, 1.0), interpolation=interpolation, antialias=True
            )
        ]
    else:
        resize = max(image_size, int(image_size / data_config.crop_pct + 0.5))
        geometry = [v2.Resize(resize, interpolation=interpolation, antialias=True), v2.CenterCrop(image_size)]
    return v2.Compose(
        [
            v2.ToImage(),
            *geometry,
            *augment_ops(spec, image_size, interpolation, include_crop=False),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean.flatten().tolist(), std.flatten().tolist()),
        ]
    )
