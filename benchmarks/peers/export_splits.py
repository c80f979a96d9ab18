"""Export transferlab's exact splits so that every peer trains and tests on the same images (project venv).

For each regime and seed this composes the config ``transferlab train <regime overrides> seed=S`` would run,
builds its data module with transferlab's own assembly (``build_backbone`` → ``build_data_module``), and writes
``work/splits/<regime>_seed<S>.npz``: the uint8 train/val/test images at 64 px exactly as transferlab feeds them
(eval preprocessing, before normalisation; grey digits repeated to 3 channels, which is what transferlab's
broadcasting does), the labels, the class names, the sample ids (transferlab's ``split.json`` ids), and the
backbone's mean/std. It refuses a regime whose training split is augmented: no tool augments here.

It also records transferlab's own ImageNet top-1 on the ``chelsea`` photo (the packaged backbone + the packaged
classifier, preprocessed by transferlab's eval transform), which every peer venv's ``lite0.py --check`` must equal.

Usage:
    python benchmarks/peers/export_splits.py                       # every regime × seed 0, 1, 2
    python benchmarks/peers/export_splits.py --regimes digits_5shot --seeds 0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from regimes import REGIMES, SEEDS, SPLITS, WORK, split_file

from transferlab.config.compose import compose
from transferlab.run.assembly import build_backbone, build_data_module
from transferlab.run.spec import parse_config


def _uint8_rgb(dataset: Any) -> np.ndarray:
    """A split's stored uint8 images ``(N, C, H, W)`` as contiguous ``(N, 3, H, W)``."""
    images = dataset.images
    if images.dtype != torch.uint8:
        raise TypeError(f"expected transferlab's uint8 tensor split, got {images.dtype}")
    return np.ascontiguousarray(images.expand(-1, 3, -1, -1).numpy())


def _check_normalisation(dataset: Any, images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    """Largest difference between transferlab's normalised batch and the peers' ``(x / 255 - mean) / std``."""
    n = min(len(images), 64)
    ours = (torch.from_numpy(images[:n]).float() / 255.0 - torch.from_numpy(mean).view(1, -1, 1, 1)) / torch.from_numpy(
        std
    ).view(1, -1, 1, 1)
    theirs, _ = dataset.__getitems__(list(range(n)))
    if theirs.dtype == torch.uint8:  # the decoded cache hands uint8 batches to the module, which normalises them
        theirs = (theirs.float() / 255.0 - dataset._mean.view(1, -1, 1, 1)) / dataset._std.view(1, -1, 1, 1)
    return float((ours - theirs.expand_as(ours)).abs().max())


def export(regime: str, seed: int, scratch: Path) -> dict[str, Any]:
    """Write one regime × seed and return its summary (sizes, normalisation check)."""
    overrides = [*REGIMES[regime], f"seed={seed}", f"paths.output_root={scratch}"]
    config = parse_config(compose(overrides))
    backbone, _ = build_backbone(config, load_weights=False)  # only the data config is needed
    data = build_data_module(config, backbone.data_config, "fit")
    if data.train_set.augment is not None:
        raise SystemExit(f"{regime}: transferlab's training split is augmented; the comparison uses none")
    mean = np.asarray(backbone.data_config.mean, dtype=np.float32)
    std = np.asarray(backbone.data_config.std, dtype=np.float32)
    arrays: dict[str, np.ndarray] = {"mean": mean, "std": std, "class_names": np.asarray(list(data.class_names))}
    worst = 0.0
    for name in ("train", "val", "test"):
        dataset = getattr(data, f"{name}_set")
        images = _uint8_rgb(dataset)
        arrays[f"x_{name}"] = images
        arrays[f"y_{name}"] = dataset.labels.numpy().astype(np.int64)
        arrays[f"ids_{name}"] = np.asarray(data.members[name])
        worst = max(worst, _check_normalisation(dataset, images, mean, std))
    meta = {"regime": regime, "seed": seed, "overrides": REGIMES[regime], "image_size": int(images.shape[-1])}
    arrays["meta"] = np.asarray(json.dumps(meta))
    path = split_file(regime, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    sizes = {s: len(arrays[f"y_{s}"]) for s in ("train", "val", "test")}
    return {"file": str(path), "classes": len(data.class_names), **sizes, "max_norm_diff": worst}


def transferlab_chelsea() -> dict[str, Any]:
    """ImageNet top-1 on ``chelsea`` the transferlab way: its packaged backbone and eval transform, the classifier."""
    from PIL import Image
    from skimage import data

    from transferlab.backbones.packaged import load_packaged_state_dict
    from transferlab.backbones.registry import create_backbone
    from transferlab.data.transforms import eval_transform

    backbone = create_backbone("efficientnet_lite0", weights="package").eval()
    state = load_packaged_state_dict("efficientnet_lite0")
    cfg = backbone.data_config
    x = eval_transform(cfg.input_size, cfg)(Image.fromarray(data.chelsea())).unsqueeze(0)
    with torch.no_grad():
        features = backbone.forward_features(x)
        logits = torch.nn.functional.linear(features, state["classifier.weight"], state["classifier.bias"])
    p, top1 = logits.softmax(-1)[0].max(0)
    return {"top1": int(top1), "p": round(float(p), 6), "input_size": cfg.input_size, "crop_pct": cfg.crop_pct}


def main() -> None:
    """Export the requested regimes × seeds and write ``work/splits/index.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    index_file = SPLITS / "index.json"
    index = json.loads(index_file.read_text()) if index_file.is_file() else {}
    index["transferlab_chelsea"] = transferlab_chelsea()
    print("transferlab chelsea:", index["transferlab_chelsea"])
    for regime in args.regimes:
        for seed in args.seeds:
            summary = export(regime, seed, WORK / "export_scratch")
            index.setdefault("splits", {})[f"{regime}_seed{seed}"] = summary
            print(regime, seed, summary)
    index_file.write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
