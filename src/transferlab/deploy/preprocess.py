"""The preprocessing a saved model expects, as plain data: what ``predict`` applies and ``export`` builds in.

A run's data source decides how its images reached the model (:attr:`TransferDataModule.input_geometry`):
image files (image folders, label files, torchvision sets) were resized on their shorter side to
``image_size / crop_pct`` and centre-cropped to ``image_size`` with the backbone's interpolation, exactly the
eval pipeline of :func:`~transferlab.data.transforms.eval_transform`; in-memory arrays (digits, synthetic) were
square and resized whole to ``image_size`` (bilinear). Both then become uint8 and are normalised with the
backbone's statistics (:func:`~transferlab.data.transforms.normalize_images`), so a file predicted here goes
through the same ops, bit for bit, as the run's own test images of a file source.

The spec is written into ``model.safetensors`` at the end of training (metadata ``preprocessing``) and read
from there; for older files it is derived from the run's saved config and the backbone's :class:`DataConfig`.
Either way predicting needs neither the training data nor its folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from PIL import Image
from torchvision.transforms import v2

from transferlab.backbones.base import DataConfig
from transferlab.data.transforms import interpolation_mode, normalization, normalize_images
from transferlab.errors import ConfigError

Geometry = Literal["crop", "square"]


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input.

    Attributes:
        image_size: Side of the square the model sees.
        resize: ``crop``: the shorter side is resized to this, then centre-cropped to ``image_size``;
            ``square``: equal to ``image_size`` (the whole image is resized).
        geometry: ``crop`` or ``square`` (see the module docstring).
        interpolation: ``bilinear`` / ``bicubic`` / ``nearest``.
        mode: PIL colour mode images are converted to (``RGB`` or ``L``).
        mean: Per-channel normalisation mean of the model's input channels.
        std: Per-channel normalisation std.
    """

    image_size: int
    resize: int
    geometry: Geometry
    interpolation: str
    mode: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        """Channels of the model's input (a grey image broadcasts to them)."""
        return len(self.mean)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the model file's metadata, the JSON beside an export)."""
        return asdict(self) | {"channels": self.channels}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Preprocessing:
        """Read :meth:`to_dict`'s output back.

        Raises:
            ValueError: When a field is missing or has the wrong type (a damaged or foreign file).
        """
        try:
            spec = cls(
                image_size=int(raw["image_size"]),
                resize=int(raw["resize"]),
                geometry=str(raw["geometry"]),  # type: ignore[arg-type]
                interpolation=str(raw["interpolation"]),
                mode=str(raw["mode"]),
                mean=tuple(float(v) for v in raw["mean"]),
                std=tuple(float(v) for v in raw["std"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"preprocessing metadata {dict(raw)!r}: {err}") from None
        if spec.geometry not in ("crop", "square") or spec.mode not in ("RGB", "L") or len(spec.mean) != len(spec.std):
            raise ValueError(f"preprocessing metadata {dict(raw)!r}: unknown geometry, mode or channel count")
        return spec

    def geometry_ops(self) -> list[Any]:
        """PIL image → uint8 ``(C, H, W)`` tensor at ``image_size``: decode, resize, crop."""
        interpolation = interpolation_mode(DataConfig(interpolation=self.interpolation))
        if self.geometry == "square":
            resize = v2.Resize((self.image_size, self.image_size), interpolation=interpolation, antialias=True)
            return [v2.ToImage(), resize]
        return [
            v2.ToImage(),
            v2.Resize(self.resize, interpolation=interpolation, antialias=True),
            v2.CenterCrop(self.image_size),
        ]

    def to_uint8(self, image: Image.Image) -> torch.Tensor:
        """One PIL image → the uint8 ``(C, image_size, image_size)`` tensor the model's normalisation takes."""
        if image.mode != self.mode:
            image = image.convert(self.mode)
        return v2.Compose(self.geometry_ops())(image)

    def normalize(self, batch: torch.Tensor) -> torch.Tensor:
        """A uint8 batch ``(B, C, H, W)`` → normalised float32 on its device (torchvision's exact op order)."""
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return normalize_images(batch, mean, std)


def preprocessing_for(data_cfg: Mapping[str, Any], data_config: DataConfig) -> Preprocessing:
    """The preprocessing of a run from its saved ``data`` config and its backbone's data config.

    Raises:
        ConfigError: When the run's data source is not registered here (then its geometry is unknown).
    """
    from transferlab.data.registry import data_modules  # imports every data module (and Lightning): train has

    name = str(data_cfg.get("name"))
    cls = data_modules().get(name)
    if cls is None:
        known = ", ".join(sorted(data_modules()))
        raise ConfigError(
            f"data.name={name!r} of the saved run: no such data source in this transferlab (known: {known}), so "
            "its preprocessing is unknown. Fix: use the transferlab version (or the plugin) the run was trained with."
        )
    size = data_cfg.get("image_size") or data_config.input_size
    size = int(size)
    mean, std = normalization(data_config)
    geometry: Geometry = getattr(cls, "input_geometry", "crop")
    mode = getattr(cls, "input_mode", None) or ("RGB" if data_config.in_chans == 3 else "L")
    if geometry == "square":
        # in-memory arrays were resized bilinearly whatever the backbone prefers (see data/digits.py)
        resize, interpolation = size, "bilinear"
    else:
        resize, interpolation = max(size, int(size / data_config.crop_pct + 0.5)), data_config.interpolation
    return Preprocessing(
        image_size=size,
        resize=resize,
        geometry=geometry,
        interpolation=interpolation,
        mode=mode,
        mean=tuple(float(v) for v in mean.flatten()),
        std=tuple(float(v) for v in std.flatten()),
    )
