"""Map-style datasets of PIL images: a list of image files, and a transformed view of a subset of any dataset.

Image folders and torchvision data sets both yield ``(PIL image, label)``; a :class:`TransformedView` selects
the split's indices, converts the image to the model's colour mode (grey MNIST → RGB) and applies the split's
transform, so both sources share one train/eval pipeline. A label is an ``int`` class index, or (multi-label
label files) a multi-hot ``float32`` tensor of shape ``(C,)``, which the default collate stacks to ``(B, C)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, default_collate

from transferlab.errors import DataError

log = logging.getLogger(__name__)

Label = int | torch.Tensor
"""One sample's label: a class index, or a multi-hot ``float32`` vector of shape ``(C,)`` (multi-label)."""

OnCorrupt = Literal["fail", "skip"]
"""What to do with an image file that cannot be read: stop naming it, or leave it out (counted and logged)."""
ON_CORRUPT: tuple[str, ...] = ("fail", "skip")


def unreadable_reason(path: Path) -> str | None:
    """Why ``path`` cannot be read as an image, or ``None`` when it can.

    Checks what PIL can check without decoding pixels: the format is identified, the header parses, and
    ``verify()`` passes (for PNG it checks every chunk's checksum, so a cut-off PNG fails here). A JPEG cut
    off inside its pixel data passes and fails when it is first decoded (see :class:`ImageFileList`).
    """
    try:
        with open(path, "rb") as f, Image.open(f) as img:
            img.verify()
    except UnidentifiedImageError:
        return "not an image file PIL can identify"
    except Exception as exc:  # PIL raises OSError, SyntaxError, struct.error, ValueError… for broken files
        return f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'broken file'}"
    return None


def find_unreadable(paths: Sequence[Path], workers: int | None = None) -> list[tuple[Path, str]]:
    """``(path, reason)`` of every file of ``paths`` that :func:`unreadable_reason` rejects, in input order.

    Args:
        paths: Image files.
        workers: Threads reading headers (default: up to 8; file reading and PIL release the GIL).
    """
    if len(paths) < 64:
        reasons = [unreadable_reason(p) for p in paths]
    else:
        with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 1) * 2)) as pool:
            reasons = list(pool.map(unreadable_reason, paths, chunksize=64))
    return [(p, r) for p, r in zip(paths, reasons, strict=True) if r is not None]


def collate_readable(batch: list[Any]) -> Any:
    """PyTorch's default collate over the samples that could be read (``on_corrupt: skip`` yields ``None``).

    Raises:
        DataError: When no sample of the batch could be read.
    """
    kept = [item for item in batch if item is not None]
    if not kept:
        raise DataError(
            f"every image of a batch of {len(batch)} cannot be read (data.on_corrupt=skip left them all out). "
            "Fix: delete or replace the unreadable files named in the log."
        )
    return default_collate(kept)


class ImageFileList(Dataset):
    """``(path, label)`` pairs loaded lazily as PIL images.

    Attributes:
        targets: The labels without decoding an image (what :func:`~transferlab.data.base.split_targets`
            reads): a list of ``int``, or an ``(N, C)`` ``float32`` array of 0/1 for multi-hot labels.

    Args:
        samples: Image paths and their labels: every label an ``int``, or every label a multi-hot vector
            (a tensor or array of shape ``(C,)``).
        on_corrupt: A file that fails to decode raises a :class:`DataError` naming it (``fail``), or is logged
            and yields ``None``, which :func:`collate_readable` leaves out of its batch (``skip``).

    """

    def __init__(self, samples: Sequence[tuple[Path, Any]], on_corrupt: OnCorrupt = "fail") -> None:
        self.samples = list(samples)
        labels = [label for _, label in self.samples]
        self.multi_hot = bool(labels) and not isinstance(labels[0], int | np.integer)
        # Multi-hot labels live in one array, not as a tensor object per sample: item lists of many small
        # objects are copied page by page into every forked worker as their reference counts change.
        self.targets: list[int] | np.ndarray = (
            np.stack([np.asarray(label, dtype=np.float32) for label in labels]) if self.multi_hot else labels
        )
        self.on_corrupt = on_corrupt

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Image.Image, Label] | None:
        path = self.samples[index][0]
        label = torch.tensor(self.targets[index]) if self.multi_hot else self.targets[index]
        try:
            # Open the file ourselves and decode now: the handle is released at once (no leak across workers)
            # and a corrupt file fails here, inside the try, with its path in the message.
            with open(path, "rb") as f:
                img = Image.open(f)
                img.load()
            return img, label
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            if self.on_corrupt == "skip":
                log.warning("skipped unreadable image file %s (%s)", path, reason)
                return None
            raise DataError(
                f"image file {path} cannot be read ({reason}). Fix: delete or replace the file, or set "
                f"data.on_corrupt=skip to leave unreadable files out."
            ) from exc


class TransformedView(Dataset):
    """A subset of a ``(PIL image, label)`` dataset with a colour mode and a transform.

    Args:
        base: The dataset to index (its items are ``(PIL image, label)``, an ``int`` or a multi-hot tensor).
        indices: Indices of ``base`` in this split.
        transform: PIL image → tensor.
        mode: PIL colour mode the transform expects (``RGB`` or ``L``).
        label_map: Optional mapping of ``base``'s (``int``) labels to this view's labels.

    """

    def __init__(
        self,
        base: Dataset,
        indices: Sequence[int] | np.ndarray,
        transform: Callable[[Any], Any],
        mode: str = "RGB",
        label_map: np.ndarray | None = None,
    ) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = transform
        self.mode = mode
        self.label_map = label_map

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Any, Label] | None:
        item = self.base[int(self.indices[index])]
        if item is None:  # an unreadable file left out (ImageFileList with on_corrupt=skip)
            return None
        img, label = item
        if img.mode != self.mode:
            img = img.convert(self.mode)
        if isinstance(label, torch.Tensor) and label.ndim == 1:
            return self.transform(img), label  # multi-hot: passed on as it is
        label = int(label) if self.label_map is None else int(self.label_map[int(label)])
        return self.transform(img), label
