"""The inputs some shipped config options need to be valid offline: an image folder, a label file, an exported
model, companions.

Used by ``tests/config/test_config_surface.py``; nothing here downloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.config.surface import DATA, Companions
from transferlab.config.readers import MISSING


def make_image_folder(root: Path) -> Path:
    """Two class folders of four 8×8 PNG images each: enough for ``data=image_folder`` to list and split."""
    from PIL import Image

    for index, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (60 * index + 10 * i, 0, 0)).save(root / name / f"{i}.png")
    return root


def make_label_file(folder: Path) -> Path:
    """``folder/labels.csv`` listing the images of :func:`make_image_folder` (path, label): ``data=label_file``."""
    rows = ["path,label"] + [f"{name}/{i}.png,{name}" for name in ("cat", "dog") for i in range(4)]
    path = folder / "labels.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def export_small_cnn(path: Path) -> Path:
    """A ``model.safetensors`` as a run exports it: ``small_cnn`` backbone tensors and its registry name."""
    from safetensors.torch import save_file

    from transferlab.backbones import create_backbone

    state = create_backbone("small_cnn").state_dict()
    save_file({f"backbone.{k}": v.contiguous() for k, v in state.items()}, str(path), {"backbone_name": "small_cnn"})
    return path


def companions(folder: Path, weights: Path) -> Companions:
    """The overrides an option needs to be valid on this machine, decided by what the composed option holds."""
    import torch

    label_file = make_label_file(folder)

    def needs(group: str, option: str, node: Mapping[str, Any]) -> list[str]:
        extra = []
        if group == "backbone" and node.get("weights") == MISSING:
            extra.append(f"backbone.weights={weights}")
        if group == DATA and "root" in node:
            extra.append(f"data.root={folder}")
        if group == DATA and node.get("file") == MISSING:
            extra.append(f"data.file={label_file}")
        if group == "trainer" and node.get("accelerator") in ("gpu", "cuda") and not torch.cuda.is_available():
            extra.append("trainer.accelerator=cpu")  # the option's other keys are still checked here
        if group == "strategy" and isinstance(node.get("adapter"), Mapping):
            extra.append("strategy.adapter.target_modules=[*block*.0]")  # small_cnn's convolutions
        return extra

    return needs
