"""Random resized crops and flips of uint8 image tensors, cheap per sample (the decoded-image cache's training ops)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF


class RandomResizedCropFlip:
    """``RandomResizedCrop`` (+ optional horizontal flip) of a uint8 ``(C, H, W)`` tensor, cheap per sample.

    Draws crops like torchvision's ``RandomResizedCrop.get_params`` (area uniform in ``scale``, log-uniform
    aspect ratio in ``ratio``, ten tries, then the centre crop) from one ``torch.rand`` call (so the torch seed
    decides them, in DataLoader workers too), and resizes a channels-last copy of the crop: the native uint8
    resize is 2-3× faster on channels-last input than on a strided view. ``then`` runs the other augmentations.

    Args:
        size: Output side.
        scale: Range of the crop's area as a fraction of the image.
        interpolation: Resampling of the resize (antialiased).
        hflip: Flip with probability 0.5.
        then: Further per-sample ops (rotation, colour jitter, …), or ``None``.
    """

    def __init__(
        self,
        size: int,
        scale: tuple[float, float],
        interpolation: v2.InterpolationMode,
        hflip: bool,
        then: Any = None,
    ) -> None:
        self.size, self.scale, self.interpolation, self.hflip, self.then = size, scale, interpolation, hflip, then
        self.log_ratio = (math.log(3 / 4), math.log(4 / 3))

    def params(self, height: int, width: int, u: list[float]) -> tuple[int, int, int, int]:
        """``(top, left, h, w)`` of a crop of a ``height × width`` image from 22 uniforms ``u``."""
        (s0, s1), (r0, r1) = self.scale, self.log_ratio
        for k in range(10):
            area = height * width * (s0 + (s1 - s0) * u[2 * k])
            aspect = math.exp(r0 + (r1 - r0) * u[2 * k + 1])
            w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < w <= width and 0 < h <= height:
                return int(u[20] * (height - h + 1)), int(u[21] * (width - w + 1)), h, w
        w, h = width, height  # the fallback of torchvision: the centre crop, clamped to the ratio range
        if width / height < 3 / 4:
            h = round(w / (3 / 4))
        elif width / height > 4 / 3:
            w = round(h * (4 / 3))
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """One random crop of ``image`` (uint8 ``(C, H, W)``), resized to ``size × size``."""
        u = torch.rand(23).tolist()
        top, left, h, w = self.params(image.shape[-2], image.shape[-1], u)
        crop = image[None, :, top : top + h, left : left + w].contiguous(memory_format=torch.channels_last)
        out = TF.resize_image(crop, [self.size, self.size], interpolation=self.interpolation, antialias=True)[0]
        if self.hflip and u[22] < 0.5:
            out = out.flip(-1)
        return out if self.then is None else self.then(out)
