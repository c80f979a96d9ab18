"""Map-style datasets of PIL images: a list of image files, and a transformed view of a subset of any dataset.

Image folders and torchvision data sets both yield ``(PIL image, label)``; a :class:`TransformedView` selects
the split's indices, converts the image to the model's colour mode (grey MNIST → RGB) and applies the split's
transform, so both sources share one train/eval pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from transferlab.errors import DataError


class ImageFileList(Dataset):
    """``(path, label)`` pairs loaded lazily as PIL images.

    Args:
        samples: Image paths and their labels.

    """

    def __init__(self, samples: Sequence[tuple[Path, int]]) -> None:
        self.samples = list(samples)
        self.targets = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        path, label = self.samples[index]
        try:
            # Open the file ourselves and decode now: the handle is released at once (no leak across workers)
            # and a corrupt file fails here, inside the try, with its path in the message.
            with open(path, "rb") as f:
                img = Image.open(f)
                img.load()
            return img, label
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(
                f"image file {path} cannot be read ({exc}). Fix: delete or replace the file, then rerun."
            ) from exc


class TransformedView(Dataset):
    """A subset of a ``(PIL image, label)`` dataset with a colour mode and a transform.

    Args:
        base: The dataset to index (its items are ``(PIL image, int label)``).
        indices: Indices of ``base`` in this split.
        transform: PIL image → tensor.
        mode: PIL colour mode the transform expects (``RGB`` or ``L``).
        label_map: Optional mapping of ``base``'s labels to this view's labels.

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

    def __getitem__(self, index: int) -> tuple[Any, int]:
        img, label = self.base[int(self.indices[index])]
        if img.mode != self.mode:
            img = img.convert(self.mode)
        label = int(label) if self.label_map is None else int(self.label_map[int(label)])
        return self.transform(img), label
