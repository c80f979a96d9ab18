"""Reading a tree of class folders: which layout it has, its classes and its image files — or why not.

Two layouts are accepted under a root:

* ``root/<class>/*.png`` — one pool, split later by fractions;
* ``root/train/<class>/…`` with optional ``root/val/<class>/…`` and ``root/test/<class>/…``.

Every problem is a :class:`~transferlab.errors.DataError` that names the folder and the fix, raised while the
data module is built, long before a training step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS

from transferlab.errors import DataError

SPLIT_DIRS = ("train", "val", "test")


@dataclass(frozen=True)
class FolderTree:
    """What a root holds.

    Attributes:
        root: The root folder.
        class_names: Class folder names, sorted (the label of a class is its index here).
        splits: Split name → folder of class folders; ``{"all": root}`` for the single-pool layout.

    """

    root: Path
    class_names: list[str]
    splits: dict[str, Path]

    @property
    def pooled(self) -> bool:
        """Whether the root is one pool of class folders (no ``train/`` folder)."""
        return "all" in self.splits


def _subdirs(folder: Path) -> list[str]:
    # Hidden folders (.ipynb_checkpoints, .DS_Store-like debris) are never classes.
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def is_image(name: str) -> bool:
    """Whether a file name has an image extension torchvision/PIL reads (case-insensitive)."""
    return name.lower().endswith(IMG_EXTENSIONS)


def read_tree(root: Path, key: str = "data.root") -> FolderTree:
    """Find the layout and the classes of ``root`` (folders only; :func:`list_images` lists the files).

    Args:
        root: The root folder.
        key: Config key that set ``root``, for messages.

    Raises:
        DataError: root missing or not a folder, no class folders, an ambiguous layout, or class folders that
            differ between ``train/``, ``val/`` and ``test/``.

    """
    if not root.exists():
        raise DataError(
            f"{key}={root}: folder not found. Fix: point {key} at a folder of class folders "
            f"(root/<class>/*.png) or of train/ val/ test/ folders of class folders."
        )
    if not root.is_dir():
        raise DataError(f"{key}={root}: is a file, not a folder. Fix: point {key} at the folder of class folders.")
    subdirs = _subdirs(root)
    if not subdirs:
        loose = sum(1 for e in os.scandir(root) if e.is_file() and is_image(e.name))
        found = f"it holds {loose} loose images but no class folders" if loose else "it is empty"
        raise DataError(f"{key}={root}: {found}. Fix: put the images of each class in root/<class name>/.")
    if "train" not in subdirs:
        if set(subdirs) <= {"val", "test"}:
            raise DataError(
                f"{key}={root}: has {'/ '.join(subdirs)}/ but no train/ folder. Fix: add "
                f"{root / 'train'} with one folder per class."
            )
        return FolderTree(root, subdirs, {"all": root})
    others = [d for d in subdirs if d not in SPLIT_DIRS]
    if others:
        raise DataError(
            f"{key}={root}: mixes a train/ folder with other folders ({', '.join(others)}); is "
            f"'train' a split or a class? Fix: move the class folders into {root / 'train'}, or "
            f"rename the class folder 'train'."
        )
    splits = {s: root / s for s in SPLIT_DIRS if s in subdirs}
    class_names = _subdirs(splits["train"])
    if not class_names:
        raise DataError(
            f"{key}: {splits['train']} has no class folders. Fix: put each class's training images "
            f"in {splits['train']}/<class name>/."
        )
    for split, folder in splits.items():
        if split == "train":
            continue
        present = _subdirs(folder)
        missing = [c for c in class_names if c not in present]
        if missing:
            raise DataError(
                f"{key}: class folder {folder / missing[0]} is missing ({split}/ lacks "
                f"{len(missing)} of the {len(class_names)} classes of train/: "
                f"{', '.join(missing[:5])}). Fix: add it, with images, or remove {folder} "
                f"so that {split} is carved from train/."
            )
        extra = [c for c in present if c not in class_names]
        if extra:
            raise DataError(
                f"{key}: class folder {folder / extra[0]} has no counterpart in "
                f"{splits['train']}. Fix: add {splits['train'] / extra[0]} with training images, "
                f"or remove {folder / extra[0]}."
            )
    return FolderTree(root, class_names, splits)


def list_images(class_dir: Path) -> list[Path]:
    """All image files under ``class_dir`` (recursively, sorted so that splits are reproducible).

    Raises:
        DataError: when the folder holds no image.

    """
    files = [
        Path(d) / f
        for d, _, names in sorted(os.walk(class_dir, followlinks=True))
        for f in sorted(names)
        if is_image(f)
    ]
    if not files:
        raise DataError(
            f"class folder {class_dir} has no images (accepted: {', '.join(IMG_EXTENSIONS)}). "
            f"Fix: add images or delete the folder."
        )
    return files


def list_samples(folder: Path, class_names: list[str]) -> list[tuple[Path, int]]:
    """``(path, label)`` of every image under ``folder/<class>/`` for each class, labels by class order.

    Raises:
        DataError: when a class folder holds no image.

    """
    return [(path, label) for label, name in enumerate(class_names) for path in list_images(folder / name)]
