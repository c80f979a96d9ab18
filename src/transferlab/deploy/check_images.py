"""The images an export is checked on: the run's own test images where they can be had, else synthetic ones.

An exported graph is only as good as its agreement with PyTorch on the inputs it will meet, so ``export`` runs
both on real images first:

- in-memory sources (digits, synthetic: ``square`` geometry) are rebuilt from the run's saved data config, and
  their test split's uint8 images, exactly the tensors the run was tested on, are taken;
- file sources (image folders, label files) give the test members of the run's ``split.json`` that are still on
  disk, decoded with PIL in the model's colour mode, at their own sizes;
- anything else (a torchvision set, a moved folder) falls back to seeded synthetic images.

A few synthetic images of other sizes (portrait, landscape, tiny) are always added, so the in-graph resize and
crop are exercised even when every real image is already at ``image_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from transferlab.deploy.loaded import LoadedModel
from transferlab.errors import TransferlabError
from transferlab.rundir.split import find_run_dir, read_split

#: Synthetic extras when the input size is free: (height, width) as multiples of image_size, and a tiny one.
EXTRA_SHAPES = ((1.0, 1.0), (1.37, 0.81), (0.6, 1.9), (0.05, 0.05))


@dataclass
class CheckImages:
    """Images to compare the export with PyTorch on.

    Attributes:
        images: uint8 ``(H, W, C)`` arrays, ``C`` 1 for grey (``L``) models, else 3; sizes may differ.
        source: Where they came from, for the report.
        real: How many of them are the run's own images (the rest are synthetic).
    """

    images: list[np.ndarray]
    source: str
    real: int


def _channels(mode: str) -> int:
    return 1 if mode == "L" else 3


def _hwc(chw: np.ndarray, channels: int) -> np.ndarray:
    """uint8 ``(C, H, W)`` → ``(H, W, channels)`` (a grey array repeated to RGB, an RGB one averaged to grey)."""
    if chw.shape[0] != channels:
        chw = np.repeat(chw, channels, axis=0) if chw.shape[0] == 1 else chw.mean(0, keepdims=True).round()
    return np.ascontiguousarray(chw.transpose(1, 2, 0).astype(np.uint8))


def _in_memory(model: LoadedModel, limit: int) -> list[np.ndarray]:
    from transferlab.data.registry import data_modules  # imports every data module (and Lightning): only here

    data_cfg = dict(model.saved.config.get("data") or {})
    cls = data_modules().get(str(data_cfg.get("name")))
    if cls is None or getattr(cls, "input_geometry", "crop") != "square":
        return []
    try:
        module = cls.from_config(data_cfg, model.network.backbone.data_config)  # type: ignore[attr-defined]
        module.setup("test")
        images = module.test_set.images  # type: ignore[union-attr]
    except (TransferlabError, AttributeError, KeyError, TypeError, ValueError, OSError):
        return []  # not the in-memory layout this reads: the synthetic images stand in
    channels = _channels(model.preprocessing.mode)
    return [_hwc(img.numpy(), channels) for img in images[:limit]]


def _from_split(model: LoadedModel, limit: int) -> list[np.ndarray]:
    run_dir = find_run_dir(model.path)
    try:
        saved = read_split(run_dir) if run_dir is not None else None
    except ValueError:
        return []
    if saved is None:
        return []
    out: list[np.ndarray] = []
    for member in sorted(saved.members.get("test", ())):
        if len(out) >= limit:
            break
        path = Path(member)
        if not path.is_absolute() or not path.is_file():
            continue  # a bundled set's id ("digits/12"), or a file moved since training
        try:
            with Image.open(path) as image:
                array = np.asarray(image.convert(model.preprocessing.mode))
        except (OSError, UnidentifiedImageError, ValueError):
            continue
        out.append(array[:, :, None] if array.ndim == 2 else array)
    return out


def synthetic_images(shapes: list[tuple[int, int]], channels: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random images (coarse noise upsampled, plus fine noise), one per ``(H, W)``: image-like, not flat."""
    rng = np.random.default_rng(seed)
    out = []
    for height, width in shapes:
        coarse = rng.integers(0, 256, size=(max(2, height // 8), max(2, width // 8), channels), dtype=np.uint8)
        mode = "L" if channels == 1 else "RGB"
        base = Image.fromarray(coarse[:, :, 0] if channels == 1 else coarse, mode=mode)
        smooth = np.asarray(base.resize((width, height), Image.Resampling.BILINEAR), dtype=np.int16)
        smooth = smooth.reshape(height, width, channels)
        fine = rng.integers(-20, 21, size=smooth.shape, dtype=np.int16)
        out.append(np.clip(smooth + fine, 0, 255).astype(np.uint8))
    return out


def check_images(model: LoadedModel, *, limit: int, size: tuple[int, int] | None = None) -> CheckImages:
    """The images to verify an export of ``model`` on (see the module docstring).

    Args:
        model: The model being exported.
        limit: At most this many of the run's own images.
        size: The export's fixed ``(H, W)``; every image is then resized to it with PIL (bilinear) first, the
            same input for both sides of the comparison. ``None``: images keep their sizes.
    """
    channels = _channels(model.preprocessing.mode)
    real = _in_memory(model, limit)
    source = f"{len(real)} test images of the run's {model.saved.config.get('data', {}).get('name')} data"
    if not real:
        real = _from_split(model, limit)
        source = f"{len(real)} test images of the run's split.json still on disk"
    side = model.preprocessing.image_size
    if size is not None:
        shapes = [size] * (8 if not real else 2)
    else:
        shapes = [(max(1, round(h * side)), max(1, round(w * side))) for h, w in EXTRA_SHAPES]
        shapes += [(side, side)] * (4 if not real else 0)
    extra = synthetic_images(shapes, channels)
    source = f"{source} + {len(extra)} synthetic images" if real else f"{len(extra)} synthetic images (no test images)"
    images = real + extra
    if size is not None:
        images = [_resized(img, size) for img in images]
    return CheckImages(images, source, len(real))


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == tuple(size):
        return image
    grey = image.shape[2] == 1
    pil = Image.fromarray(image[:, :, 0] if grey else image)
    out = np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return out[:, :, None] if grey else out
