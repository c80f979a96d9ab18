"""The regimes of the peer comparison: transferlab overrides that define each task, shared by every script.

Plain data and the standard library only: the export (project venv), the transferlab runner and the driver read
it; the peers read only the exported ``.npz`` files.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Everything generated (splits, photos, runs, logs) lives here; git-ignored.
WORK = HERE / "work"
PHOTOS = WORK / "photos"
SPLITS = WORK / "splits"
SEEDS = (0, 1, 2)
#: The total epoch budget of every tool (transferlab's lp_ft: 2 probe + 6 fine-tune epochs).
PROBE_EPOCHS, FINETUNE_EPOCHS = 2, 6
EPOCHS = PROBE_EPOCHS + FINETUNE_EPOCHS

#: Regime name → transferlab overrides (``seed=S`` is added per run). Order = table order, smallest first.
REGIMES: dict[str, list[str]] = {
    "digits_5shot": ["data=digits", "data.shots_per_class=5"],
    "photos_10shot": [
        "data=image_folder",
        f"data.root={PHOTOS}",
        "data.shots_per_class=10",
        "data.image_size=64",
        # the same in-process loading as the peers (and as digits), and no augmentation anywhere
        "data.num_workers=0",
        "data.augment.random_resized_crop=null",
        "data.augment.hflip=false",
    ],
    "digits_all": ["data=digits"],
}

#: What a regime means, for the table.
DESCRIPTIONS = {
    "digits_5shot": "sklearn digits, 5 training images per class (10 classes), 64 px",
    "photos_10shot": "crops of the bundled skimage/sklearn photos, 19 classes, 10 training images per class, 64 px",
    "digits_all": "sklearn digits, every training image (10 classes), 64 px",
}


def split_file(regime: str, seed: int) -> Path:
    """Where ``export_splits.py`` writes a regime × seed."""
    return SPLITS / f"{regime}_seed{seed}.npz"
