"""Which samples a run trained, validated and tested on (``split.json``), and what ``eval`` may test it on.

A run's test split is the run's. ``split.json`` stores each split's sample ids (an image file's resolved path,
a bundled or torchvision set's ``<name>/<part>/<index>``), so ``transferlab eval`` can tell the run's own test
split from other data, and count how many of the samples it is asked to test on were trained on. A data
config that differs from the run's only in how the pool is split (``data.seed``, the fractions, the shots)
names the run's own data: eval then uses the run's split keys, whatever the command line says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.rundir.layout import SPLIT_FILE

FORMAT = 1
#: Data keys that only choose which samples of the pool go to which split (a label file's ``split_column`` reads
#: the splits from a column of the same rows: the pool is the file either way).
SPLIT_KEYS = ("seed", "val_fraction", "test_fraction", "shots_per_class", "label_fraction", "split_column")
#: Data keys that change neither the pool nor the split (loading, preprocessing, training augmentation).
NEUTRAL_KEYS = ("batch_size", "num_workers", "pin_memory", "on_device", "image_size", "augment", "on_corrupt")


@dataclass(frozen=True)
class SavedSplit:
    """A run's ``split.json``: the data name and seed, and the sample ids of each split."""

    data: str | None
    seed: int | None
    members: dict[str, frozenset[str]]


@dataclass(frozen=True)
class SplitCheck:
    """How eval's test samples relate to the run's splits.

    Attributes:
        own: The test samples are exactly the run's test split.
        tested: Number of samples tested.
        in_train: How many of them the run trained on.
        in_val: How many of them the run validated (chose its epochs) on.
    """

    own: bool
    tested: int
    in_train: int
    in_val: int

    def label(self) -> str:
        """``the run's own test split (N samples)`` or ``other data (N samples; …)``."""
        if self.own:
            return f"the run's own test split ({self.tested} samples)"
        seen = f"; {self.in_train} in the run's training split, {self.in_val} in its validation split"
        return f"other data ({self.tested} samples{seen})"


def write_split(run_dir: Path, data: str | None, seed: int | None, members: Mapping[str, Sequence[str]]) -> Path:
    """Write ``<run_dir>/split.json`` atomically (temp file, then rename)."""
    path = Path(run_dir) / SPLIT_FILE
    record = {
        "format": FORMAT,
        "data": data,
        "seed": seed,
        "counts": {k: len(v) for k, v in members.items()},
        "members": {k: list(v) for k, v in members.items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record) + "\n")
    tmp.replace(path)
    return path


def find_run_dir(path: Path) -> Path | None:
    """The run dir of a run dir, its ``model.safetensors`` or one of its checkpoints (``None`` if none)."""
    for candidate in (path, *path.parents):
        if (candidate / SPLIT_FILE).is_file() or (candidate / "metrics.json").is_file():
            return candidate
    return None


def read_split(run_dir: Path) -> SavedSplit | None:
    """The run's saved split, or ``None`` when it has none (runs of older versions, multi-task data).

    Raises:
        ValueError: For a ``split.json`` that is not one (truncated, another format).
    """
    path = Path(run_dir) / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        members = {k: frozenset(str(i) for i in v) for k, v in data["members"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not a transferlab split file ({err}).") from None
    return SavedSplit(data.get("data"), data.get("seed"), members)


def check_split(saved: SavedSplit, test_ids: Sequence[str]) -> SplitCheck:
    """Compare the samples eval tests on with the run's splits."""
    tested = set(test_ids)
    own = tested == set(saved.members.get("test", ()))
    in_train = len(tested & saved.members.get("train", frozenset()))
    in_val = len(tested & saved.members.get("val", frozenset()))
    return SplitCheck(own, len(tested), in_train, in_val)


def run_split_keys(eval_data: Mapping[str, Any], run_data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Eval's data config with the run's split keys where it names the run's own data.

    Args:
        eval_data: The data config eval was asked for (the run's, with the command line's overrides).
        run_data: The data config the run trained with.

    Returns:
        ``(config, changed)``: ``config`` is ``eval_data`` with the run's split keys when the two differ only in
        split keys and neutral keys (the run's own data); ``changed`` lists the split keys that were put back.
        Other data comes back as it is, with ``changed`` empty.
    """
    keys = set(eval_data) | set(run_data)
    differs = {k for k in keys if eval_data.get(k) != run_data.get(k)}
    if not differs or not differs <= set(SPLIT_KEYS) | set(NEUTRAL_KEYS):
        return dict(eval_data), []
    changed = sorted(differs & set(SPLIT_KEYS))
    out = dict(eval_data)
    for key in changed:
        if key in run_data:
            out[key] = run_data[key]
        else:
            out.pop(key, None)
    return out, changed
