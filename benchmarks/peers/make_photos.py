"""Write the few-shot natural-image task: 64-px crops of the colour photos that ship with scikit-image/-learn.

A class is one bundled photo, or the left or right half of one (the halves of a big photo show different things:
the astronaut and the flag, the cup and the table). Every image is a random square crop (random position, 30–60 %
of the region's shorter side) resized to 64 px; no mirroring. 19 classes × 40 images, written as an image folder
``<out>/<class>/<k>.png`` that ``transferlab train data=image_folder`` reads; transferlab carves val (15 %) and
test (20 %) per class, seeded, and ``data.shots_per_class=10`` keeps 10 training images per class. PNG, so no
compression changes the pixels. Deterministic: the same bytes for the same ``--seed``.

Usage (any venv with numpy, Pillow, scikit-image and scikit-learn; the project's has them):
    python benchmarks/peers/make_photos.py --out benchmarks/peers/work/photos
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 64
PER_CLASS = 40
#: photos split into a left and a right class (large, with different content on each side)
HALVED = ("astronaut", "coffee", "rocket", "retina", "hubble_deep_field", "immunohistochemistry", "china", "flower")
WHOLE = ("chelsea", "colorwheel", "logo")


def photos() -> dict[str, np.ndarray]:
    """The bundled colour photos as uint8 RGB arrays (no download: they ship inside the packages)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    loaders: dict[str, Callable[[], np.ndarray]] = {n: getattr(data, n) for n in HALVED + WHOLE if hasattr(data, n)}
    out = {name: np.asarray(load()) for name, load in loaders.items()}
    out["china"], out["flower"] = china, flower
    logo = out["logo"].astype(np.float32)  # RGBA: composite on white
    alpha = logo[..., 3:] / 255.0
    out["logo"] = (logo[..., :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return out


def regions(images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Class name → the pixels its crops are cut from (sorted by name: the class order)."""
    out: dict[str, np.ndarray] = {}
    for name in HALVED:
        image = images[name]
        half = image.shape[1] // 2
        out[f"{name}_left"], out[f"{name}_right"] = image[:, :half], image[:, half:]
    for name in WHOLE:
        out[name] = images[name]
    return dict(sorted(out.items()))


def crop(region: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A random square crop (30–60 % of the shorter side) resized to ``SIZE`` px."""
    h, w = region.shape[:2]
    side = max(8, int(min(h, w) * rng.uniform(0.3, 0.6)))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return Image.fromarray(region[top : top + side, left : left + side]).resize((SIZE, SIZE), Image.BICUBIC)


def main() -> None:
    """Write the image folder (refusing a non-empty ``--out`` unless ``--force``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "work" / "photos")
    parser.add_argument("--per-class", type=int, default=PER_CLASS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="write into a non-empty --out")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        raise SystemExit(f"{args.out} is not empty; pass --force to overwrite")
    rng = np.random.default_rng(args.seed)
    classes = regions(photos())
    for name, region in classes.items():
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(args.per_class):
            crop(region, rng).save(folder / f"{k:03d}.png")
    print(f"wrote {len(classes)} classes × {args.per_class} images to {args.out}: {', '.join(classes)}")


if __name__ == "__main__":
    main()
