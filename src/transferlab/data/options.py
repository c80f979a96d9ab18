"""Typed reading of the plain ``data`` config: unknown keys, numbers, fractions and the keys every set shares.

The factory hands each data module a plain mapping; these helpers turn it into typed values at the edge and
reject bad input with a :class:`~transferlab.errors.ConfigError` that names ``data.<key>``, the value and
the fix. Nothing deeper in the package reads the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from transferlab.config import readers
from transferlab.data.samplers import SAMPLERS
from transferlab.errors import ConfigError

WHERE = "data"
"""Config path of the data group, used in every message."""

COMMON_KEYS: tuple[str, ...] = (
    "name",
    "batch_size",
    "num_workers",
    "image_size",
    "seed",
    "augment",
    "pin_memory",
    "on_device",
    "sampler",
)
"""Keys every data set accepts (see :class:`CommonOptions`)."""

MISSING = readers.MISSING

# The generic readers (transferlab.config.readers), bound to the data group's path: messages name data.<key>.
unknown_key_error = partial(readers.unknown_key_error, where=WHERE)
check_keys = partial(readers.check_keys, where=WHERE)
read_int = partial(readers.read_int, where=WHERE)
read_float = partial(readers.read_float, where=WHERE)
read_bool = partial(readers.read_bool, where=WHERE)
read_choice = partial(readers.read_choice, where=WHERE)
read_mapping = partial(readers.read_mapping, where=WHERE)


def read_required_str(cfg: Mapping[str, Any], key: str, example: str) -> str:
    """Read a string key that has no default (``???`` in the YAML).

    Raises:
        ConfigError: when the key is absent, ``null``, ``???``, not a string or blank; the message shows ``example``.

    """
    value = cfg.get(key)
    full = f"{WHERE}.{key}"
    if value is None or value == MISSING:
        raise ConfigError(f"{full} is required and not set. Fix: {full}={example}.")
    if not isinstance(value, str):
        raise ConfigError(f"{full}={value!r}: expected a string. Fix: {full}={example}.")
    if not value.strip():  # Path('') is the current folder: an unset variable must not read it
        raise ConfigError(f"{full}={value!r}: must not be empty. Fix: {full}={example}.")
    return value


def check_split_fractions(val_fraction: float, test_fraction: float) -> None:
    """Reject val/test fractions that leave nothing to train on.

    Raises:
        ConfigError: when ``val_fraction + test_fraction >= 1``.

    """
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"{WHERE}.val_fraction={val_fraction} + {WHERE}.test_fraction={test_fraction} ≥ 1 leaves no "
            f"training data. Fix: lower one of them (defaults 0.15 and 0.2)."
        )


def read_shots(cfg: Mapping[str, Any]) -> tuple[int | None, float | None]:
    """Read ``shots_per_class`` and ``label_fraction``: two ways to subsample the training split, not both.

    Returns:
        ``(shots_per_class, label_fraction)``, at most one of them not ``None``.

    Raises:
        ConfigError: on bad values or when both are set.

    """
    shots = read_int(cfg, "shots_per_class", None, minimum=1, nullable=True)
    fraction = read_float(cfg, "label_fraction", None, low_open=True, nullable=True)
    if shots is not None and fraction is not None:
        raise ConfigError(
            f"{WHERE}.shots_per_class={shots} and {WHERE}.label_fraction={fraction} are both set; they are "
            f"two ways to subsample the training split. Fix: set one and leave the other null "
            f"(e.g. {WHERE}.label_fraction=null)."
        )
    return shots, fraction


@dataclass(frozen=True)
class CommonOptions:
    """The keys every data set shares, typed.

    Attributes:
        batch_size: Samples per batch (all splits).
        num_workers: DataLoader worker processes (0 = load in the main process).
        image_size: Square side of the images the model sees, in pixels.
        seed: Seed of the splits, the subsampling and the shuffling order.
        pin_memory: Pin host memory of batches (faster host → GPU copies).
        on_device: Hold in-memory splits on the training GPU (``None`` = when they fit, see
            :meth:`~transferlab.data.base.TransferDataModule.place_on`).
        sampler: ``shuffle`` (every training sample once per epoch) or ``balanced`` (draws weighted by inverse
            class frequency, :mod:`transferlab.data.samplers`).

    """

    batch_size: int = 64
    num_workers: int = 0
    image_size: int = 224
    seed: int = 0
    pin_memory: bool = False
    on_device: bool | None = None
    sampler: str = "shuffle"


def read_common(cfg: Mapping[str, Any], default_image_size: int, default_workers: int) -> CommonOptions:
    """Read the common keys (``augment`` excepted: see :func:`transferlab.data.transforms.parse_augment`).

    Args:
        cfg: The plain ``data`` config.
        default_image_size: Image side when ``image_size`` is null: the backbone's ``DataConfig.input_size``.
        default_workers: ``num_workers`` when absent (0 for in-memory tensors, 2 for files).

    Raises:
        ConfigError: on a bad value.

    """
    image_size = read_int(cfg, "image_size", None, minimum=1, nullable=True)
    pin = read_bool(cfg, "pin_memory", None, nullable=True)
    return CommonOptions(
        batch_size=read_int(cfg, "batch_size", 64, minimum=1),  # type: ignore[arg-type]
        num_workers=read_int(cfg, "num_workers", default_workers, minimum=0),  # type: ignore[arg-type]
        image_size=default_image_size if image_size is None else image_size,
        seed=read_int(cfg, "seed", 0, minimum=0),  # type: ignore[arg-type]
        # Pinning only pays off when batches go to a GPU; on a CPU-only machine it warns and wastes time.
        pin_memory=torch.cuda.is_available() if pin is None else pin,
        on_device=read_bool(cfg, "on_device", None, nullable=True),
        sampler=read_choice(cfg, "sampler", "shuffle", SAMPLERS),
    )
