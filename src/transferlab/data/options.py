"""Typed reading of the plain ``data`` config: unknown keys, numbers, fractions and the keys every set shares.

The factory hands each data module a plain mapping; these helpers turn it into typed values at the edge and
reject bad input with a :class:`~transferlab.errors.ConfigError` that names ``data.<key>``, the value and
the fix. Nothing deeper in the package reads the config.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

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
)
"""Keys every data set accepts (see :class:`CommonOptions`)."""

MISSING = "???"
"""OmegaConf's mark of a mandatory value that was never set (``to_container`` keeps it as this string)."""


def unknown_key_error(key: str, valid: Iterable[str], where: str = WHERE) -> ConfigError:
    """Build the error for a key that is not valid here, suggesting the closest valid key."""
    valid = list(valid)
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ConfigError(f"{where}.{key}: unknown key; {hint}valid keys: {', '.join(valid)}.")


def check_keys(cfg: Mapping[str, Any], valid: Iterable[str], where: str = WHERE) -> None:
    """Raise on the first key of ``cfg`` that is not in ``valid``.

    Raises:
        ConfigError: naming ``<where>.<key>`` and the valid keys.

    """
    valid = tuple(valid)
    for key in cfg:
        if key not in valid:
            raise unknown_key_error(key, valid, where)


def read_int(
    cfg: Mapping[str, Any],
    key: str,
    default: int | None,
    *,
    minimum: int | None = None,
    nullable: bool = False,
    where: str = WHERE,
) -> int | None:
    """Read an integer key (``default`` when absent).

    Args:
        cfg: The plain config mapping.
        key: Key to read.
        default: Value when the key is absent.
        minimum: Smallest accepted value.
        nullable: Whether ``null`` is a valid value (returned as ``None``).
        where: Config path of ``cfg`` for messages.

    Raises:
        ConfigError: when the value is not an integer, is below ``minimum`` or is a forbidden ``null``.

    """
    value = cfg.get(key, default)
    full = f"{where}.{key}"
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"{full}=null: an integer is required here. Fix: {full}=<int>.")
    # bool is an int subclass; 'true' as a batch size is a typo, not a number.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise ConfigError(f"{full}={value!r}: expected an integer. Fix: {full}=<int>.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{full}={value}: must be ≥ {minimum}. Fix: {full}=<int ≥ {minimum}>.")
    return value


def read_float(
    cfg: Mapping[str, Any],
    key: str,
    default: float | None,
    *,
    low: float = 0.0,
    high: float = 1.0,
    low_open: bool = False,
    nullable: bool = False,
    where: str = WHERE,
) -> float | None:
    """Read a float key constrained to ``[low, high]`` (``(low, high]`` with ``low_open``).

    Raises:
        ConfigError: when the value is not a number, is out of range or is a forbidden ``null``.

    """
    value = cfg.get(key, default)
    full = f"{where}.{key}"
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"{full}=null: a number is required here. Fix: {full}=<number>.")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{full}={value!r}: expected a number in {'(' if low_open else '['}{low}, {high}].")
    value = float(value)
    if value > high or value < low or (low_open and value == low):
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise ConfigError(f"{full}={value}: must be in {interval}. Fix: {full}=<number in {interval}>.")
    return value


def read_bool(
    cfg: Mapping[str, Any], key: str, default: bool | None, *, nullable: bool = False, where: str = WHERE
) -> bool | None:
    """Read a boolean key.

    Raises:
        ConfigError: when the value is not ``true``/``false`` (or ``null`` where allowed).

    """
    value = cfg.get(key, default)
    full = f"{where}.{key}"
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        raise ConfigError(f"{full}={value!r}: expected true or false. Fix: {full}=true or {full}=false.")
    return value


def read_choice(cfg: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...], where: str = WHERE) -> str:
    """Read a key that takes one of a few words.

    Raises:
        ConfigError: when the value is not one of ``choices``.

    """
    value = cfg.get(key, default)
    if value not in choices:
        full = f"{where}.{key}"
        close = difflib.get_close_matches(str(value), list(choices), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"{full}={value!r}: {hint}choose one of {', '.join(choices)}. Fix: {full}={default}.")
    return str(value)


def read_required_str(cfg: Mapping[str, Any], key: str, example: str) -> str:
    """Read a string key that has no default (``???`` in the YAML).

    Raises:
        ConfigError: when the key is absent, ``null``, ``???`` or not a string; the message shows ``example``.

    """
    value = cfg.get(key)
    full = f"{WHERE}.{key}"
    if value is None or value == MISSING:
        raise ConfigError(f"{full} is required and not set. Fix: {full}={example}.")
    if not isinstance(value, str):
        raise ConfigError(f"{full}={value!r}: expected a string. Fix: {full}={example}.")
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

    """

    batch_size: int = 64
    num_workers: int = 0
    image_size: int = 224
    seed: int = 0
    pin_memory: bool = False
    on_device: bool | None = None


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
    )
