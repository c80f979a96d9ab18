"""Build the multi-label, imbalanced mosaic task from photos that ship with scikit-image and scikit-learn.

Every image is a 2×2 mosaic of 64-px tiles. A tile is a random crop (random position, 30–80 % of the photo's
shorter side, random mirror) of one of six bundled photos, drawn with falling odds, or an empty tile of
smooth noise; a few tiles are turned grey. An image's labels are exactly what went into it: the photos its
tiles were cut from, and ``grey`` when one of its tiles was turned grey. So the labels follow from how each
image was made, several labels per image are the rule, and the rare labels (``flower``: one image in ~13,
``grey``: one in ~8) are the ones a plain BCE head neglects.

Writes ``<out>/images/<split>/<id>.jpg`` and ``<out>/labels.csv`` with the columns ``path`` (relative to
``<out>``), ``labels`` (space-separated) and ``split`` (train / val / test). Deterministic for a seed.

Usage:
    python experiments/multilabel_mosaics/make_data.py --out outputs/multilabel_mosaics/data
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

TILE = 64
#: label → (loader of the bundled photo, odds of a tile showing it); odds fall so that labels are imbalanced
SOURCES: dict[str, float] = {
    "cat": 0.42,
    "coffee": 0.25,
    "astronaut": 0.15,
    "rocket": 0.09,
    "china": 0.06,
    "flower": 0.03,
}
EMPTY_TILE = 0.25  # odds that a tile shows no photo (smooth noise)
GREY_TILE = 0.035  # odds that a photo tile is turned grey (label "grey")
SPLITS = {"train": 600, "val": 300, "test": 300}


def photos() -> dict[str, np.ndarray]:
    """The six bundled photos as uint8 RGB arrays (no download: they ship inside the packages)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    return {
        "cat": data.chelsea(),
        "coffee": data.coffee(),
        "astronaut": data.astronaut(),
        "rocket": data.rocket(),
        "china": china,
        "flower": flower,
    }


def crop_tile(photo: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A random square crop (30–80 % of the shorter side), maybe mirrored, resized to one tile."""
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(0.3, 0.8))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    tile = Image.fromarray(photo[top : top + side, left : left + side]).resize((TILE, TILE), Image.BICUBIC)
    return tile.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else tile


def noise_tile(rng: np.random.Generator) -> Image.Image:
    """Smooth colour noise: an empty tile that carries no label."""
    small = rng.integers(60, 200, size=(4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((TILE, TILE), Image.BILINEAR)


def mosaic(sources: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[Image.Image, list[str]]:
    """One 2×2 mosaic and its labels (the photos it shows, and ``grey`` if a tile was turned grey)."""
    names, odds = list(SOURCES), np.array(list(SOURCES.values()))
    image, labels = Image.new("RGB", (2 * TILE, 2 * TILE)), set()
    for k in range(4):
        if rng.random() < EMPTY_TILE:
            tile = noise_tile(rng)
        else:
            name = names[int(rng.choice(len(names), p=odds / odds.sum()))]
            tile = crop_tile(sources[name], rng)
            labels.add(name)
            if rng.random() < GREY_TILE:
                tile = tile.convert("L").convert("RGB")
                labels.add("grey")
        image.paste(tile, ((k % 2) * TILE, (k // 2) * TILE))
    return image, sorted(labels)


def build(out: Path, seed: int = 0) -> Path:
    """Write the images and ``labels.csv`` under ``out``; returns the CSV's path."""
    rng = np.random.default_rng(seed)
    sources = photos()
    rows = []
    for split, count in SPLITS.items():
        folder = out / "images" / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, labels = mosaic(sources, rng)
            path = folder / f"{split}_{i:04d}.jpg"
            image.save(path, quality=90)
            rows.append({"path": path.relative_to(out).as_posix(), "labels": " ".join(labels), "split": split})
    table = out / "labels.csv"
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "labels", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return table


def main() -> None:
    """Command line: ``--out`` folder and ``--seed``; prints the label frequencies."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("outputs/multilabel_mosaics/data"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = build(args.out, args.seed)
    with open(table) as f:
        rows = list(csv.DictReader(f))
    print(f"wrote {len(rows)} images and {table}")
    for name in [*SOURCES, "grey"]:
        share = sum(name in r["labels"].split() for r in rows) / len(rows)
        print(f"  {name:10s} {share:6.1%} of images")
    print(f"  {'(none)':10s} {sum(not r['labels'] for r in rows) / len(rows):6.1%} of images")


if __name__ == "__main__":
    main()
