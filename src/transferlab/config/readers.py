"""Typed reading of plain config mappings: unknown keys, integers, numbers in a range, booleans and choices.

Every group's parser turns its plain mapping into typed values at the edge with these helpers; a bad value is
a :class:`~transferlab.errors.ConfigError` that names ``<where>.<key>``, the value and the fix. ``where`` is the
group's config path (``data``, ``callbacks.checkpoint``); an empty ``where`` means a top-level key (``seed``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from transferlab.errors import ConfigError


def _full(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


MISSING = "???"
"""OmegaConf's mark of a mandatory value that was never set (``to_container`` keeps it as this string)."""


def unknown_key_error(key: str, valid: Iterable[str], where: str = "") -> ConfigError:
    """Build the error for a key that is not valid here, suggesting the closest valid key."""
    valid = list(valid)
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ConfigError(f"{_full(where, key)}: unknown key; {hint}valid keys: {', '.join(valid)}.")


def check_keys(cfg: Mapping[str, Any], valid: Iterable[str], where: str = "") -> None:
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
    maximum: int | None = None,
    nullable: bool = False,
    where: str = "",
) -> int | None:
    """Read an integer key (``default`` when absent).

    Args:
        cfg: The plain config mapping.
        key: Key to read.
        default: Value when the key is absent.
        minimum: Smallest accepted value.
        maximum: Largest accepted value.
        nullable: Whether ``null`` is a valid value (returned as ``None``).
        where: Config path of ``cfg`` for messages.

    Raises:
        ConfigError: when the value is not an integer, is below ``minimum`` or is a forbidden ``null``.

    """
    value = cfg.get(key, default)
    full = _full(where, key)
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
    if maximum is not None and value > maximum:
        raise ConfigError(f"{full}={value}: must be ≤ {maximum}. Fix: {full}=<int ≤ {maximum}>.")
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
    where: str = "",
) -> float | None:
    """Read a float key constrained to ``[low, high]`` (``(low, high]`` with ``low_open``).

    Raises:
        ConfigError: when the value is not a number, is out of range or is a forbidden ``null``.

    """
    value = cfg.get(key, default)
    full = _full(where, key)
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"{full}=null: a number is required here. Fix: {full}=<number>.")
    interval = f"{'(' if low_open else '['}{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{full}={value!r}: expected a number in {interval}. Fix: {full}=<number in {interval}>.")
    value = float(value)
    if value > high or value < low or (low_open and value == low):
        raise ConfigError(f"{full}={value}: must be in {interval}. Fix: {full}=<number in {interval}>.")
    return value


def read_bool(
    cfg: Mapping[str, Any], key: str, default: bool | None, *, nullable: bool = False, where: str = ""
) -> bool | None:
    """Read a boolean key.

    Raises:
        ConfigError: when the value is not ``true``/``false`` (or ``null`` where allowed).

    """
    value = cfg.get(key, default)
    full = _full(where, key)
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        raise ConfigError(f"{full}={value!r}: expected true or false. Fix: {full}=true or {full}=false.")
    return value


def read_choice(cfg: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...], where: str = "") -> str:
    """Read a key that takes one of a few words.

    Raises:
        ConfigError: when the value is not one of ``choices``.

    """
    value = cfg.get(key, default)
    if value not in choices:
        full = _full(where, key)
        close = difflib.get_close_matches(str(value), list(choices), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"{full}={value!r}: {hint}choose one of {', '.join(choices)}. Fix: {full}={default}.")
    return str(value)


def read_str(
    cfg: Mapping[str, Any], key: str, default: str | None, *, nullable: bool = False, example: str = "", where: str = ""
) -> str | None:
    """Read a non-empty string key (``null`` only where allowed).

    Raises:
        ConfigError: when the value is not a string, is empty or blank, or is a forbidden ``null``/``???``.
    """
    value = cfg.get(key, default)
    full = _full(where, key)
    fix = f" Fix: {full}={example}." if example else ""
    if value is None and nullable:
        return None
    if value is None or value == MISSING:
        raise ConfigError(f"{full} is required and not set.{fix}")
    if not isinstance(value, str):
        raise ConfigError(f"{full}={value!r}: expected a string.{fix}")
    if not value.strip():
        raise ConfigError(f"{full}={value!r}: must not be empty.{fix}")
    return value


def read_mapping(cfg: Mapping[str, Any], key: str, *, where: str = "") -> Mapping[str, Any]:
    """Read a key that holds a group of keys (``{}`` when absent or ``null``).

    Raises:
        ConfigError: when the value is not a mapping.
    """
    value = cfg.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        full = _full(where, key)
        raise ConfigError(
            f"{full}={value!r}: expected a group of keys, not a single value. Fix: set its keys one by one, "
            f"{full}.<key>=<value> ('transferlab train --cfg job' prints them)."
        )
    return value
