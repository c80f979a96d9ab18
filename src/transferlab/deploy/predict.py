"""Batched prediction of image files with a loaded model: decode in loader workers, one forward per batch.

Each file is decoded and resized in a DataLoader worker (:class:`FileImages`); one that cannot be read yields
its reason instead of pixels, and becomes a row that says why: a bad file never stops the others. Batches are
normalised on the model's device (uint8 through the loader, as the decoded-image cache serves them).

Test-time augmentation (``tta=True``) averages the probabilities of several views of each image: the image
and its mirror for square inputs; for cropped inputs the ten-crop (four corners and the centre of the resized
image, and their mirrors) — the classic evaluation of Krizhevsky et al. and He et al.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from transferlab.deploy.loaded import LoadedModel
from transferlab.deploy.preprocess import Preprocessing


@dataclass
class Prediction:
    """One input's result.

    Attributes:
        path: The file.
        top_k: ``(name, probability)`` of the k most probable classes (labels), best first.
        labels: The prediction: the top class, or every label at or above its threshold (multi-label).
        scores: The probability of each predicted label, aligned with ``labels``.
        error: Why the file could not be predicted (then the other fields are empty).
    """

    path: Path
    top_k: list[tuple[str, float]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    error: str | None = None


def view_ops(pre: Preprocessing, tta: bool) -> Callable[[Image.Image], torch.Tensor]:
    """PIL image → uint8 ``(V, C, S, S)``: its views (one without TTA; see the module docstring)."""
    if not tta or pre.geometry == "square":
        geometry = v2.Compose(pre.geometry_ops())

        def views(image: Image.Image) -> torch.Tensor:
            x = geometry(image)
            return torch.stack([x, x.flip(-1)]) if tta else x.unsqueeze(0)

        return views
    ops = pre.geometry_ops()[:-1]  # decode and resize; TenCrop replaces the centre crop
    resize = v2.Compose(ops)
    ten = v2.TenCrop(pre.image_size)

    def ten_views(image: Image.Image) -> torch.Tensor:
        return torch.stack(list(ten(resize(image))))

    return ten_views


class FileImages(Dataset):
    """Image files → ``(index, views or None, error or None)``; decoding errors are caught per file.

    Args:
        files: The images.
        pre: Their preprocessing.
        tta: Return every test-time view.
    """

    def __init__(self, files: list[Path], pre: Preprocessing, tta: bool) -> None:
        self.files = files
        self.mode = pre.mode
        self.views = view_ops(pre, tta)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            with Image.open(self.files[i]) as img:
                img.load()  # a JPEG cut off in its pixel data fails here, not at open
                image = img.convert(self.mode) if img.mode != self.mode else img.copy()
        except FileNotFoundError:
            return i, None, "file not found"
        except IsADirectoryError:
            return i, None, "a directory, not an image file"
        except Exception as err:  # PIL raises many types for broken or foreign files
            detail = " ".join(str(err).split())[:160] or "broken file"
            if "cannot identify image file" in detail:
                return i, None, "not an image file PIL can identify"
            return i, None, f"cannot be decoded ({type(err).__name__}: {detail})"
        return i, self.views(image), None


def collate(batch: list[tuple[int, torch.Tensor | None, str | None]]) -> dict[str, Any]:
    """Stack the readable samples' views; keep the indices and errors of all."""
    good = [(i, x) for i, x, _ in batch if x is not None]
    return {
        "index": [i for i, _ in good],
        "views": torch.stack([x for _, x in good]) if good else None,
        "errors": [(i, e) for i, x, e in batch if x is None],
    }


def default_device() -> torch.device:
    """The first GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def decide(model: LoadedModel, probs: torch.Tensor, top_k: int) -> list[tuple[list, list[str], list[float]]]:
    """Per row of ``probs``: top-k ``(name, p)``, the predicted names and their probabilities."""
    names = model.class_names
    k = min(top_k, probs.shape[1])
    values, indices = probs.topk(k, dim=1)
    above = (probs >= model.thresholds.to(probs.device)).cpu() if model.multi_label else None  # once per batch
    out = []
    for row, (vals, idx) in enumerate(zip(values.tolist(), indices.tolist(), strict=True)):
        top = [(names[j], v) for j, v in zip(idx, vals, strict=True)]
        if above is not None:
            on = above[row].nonzero().flatten().tolist()
            picked = sorted(on, key=lambda j: -float(probs[row, j]))
            out.append((top, [names[j] for j in picked], [float(probs[row, j]) for j in picked]))
        else:
            out.append((top, [top[0][0]], [top[0][1]]))
    return out


def predict_files(
    model: LoadedModel,
    files: list[Path],
    *,
    batch_size: int = 64,
    top_k: int = 5,
    tta: bool = False,
    workers: int = 2,
    device: torch.device | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[Prediction]:
    """Predict ``files`` in order, batch by batch (results stream out as batches finish).

    Args:
        model: The loaded model.
        files: Image files.
        batch_size: Images per forward pass.
        top_k: How many classes the top-k lists hold.
        tta: Average the probabilities of the test-time views.
        workers: DataLoader workers decoding images (0 = in this process).
        device: Where the model runs (default: the first GPU, else the CPU).
        on_batch: Called with the number of files of each finished batch (a progress bar).
    """
    device = device or default_device()
    network = model.network.to(device)
    pre = model.preprocessing
    loader = DataLoader(
        FileImages(files, pre, tta),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    with torch.inference_mode():
        for batch in loader:
            rows: dict[int, Prediction] = {i: Prediction(files[i], error=e) for i, e in batch["errors"]}
            if batch["views"] is not None:
                views = batch["views"].to(device, non_blocking=True)  # (B, V, C, S, S) uint8
                b, v = views.shape[:2]
                x = pre.normalize(views.flatten(0, 1))
                probs = model.probabilities(network(x)).view(b, v, -1).mean(1)
                for i, (top, labels, scores) in zip(batch["index"], decide(model, probs, top_k), strict=True):
                    rows[i] = Prediction(files[i], top, labels, scores)
            for i in sorted(rows):
                yield rows[i]
            if on_batch is not None:
                on_batch(len(rows))
