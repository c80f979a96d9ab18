"""``build_regularizer``: the ``regularizer`` config group → a penalty module (or ``None``).

The names, keys and builders come from the registry (:mod:`transferlab.regularizers.registry`), which each
regularizer's own module fills.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import nn

from transferlab.errors import ConfigError
from transferlab.regularizers.registry import Key, registered
from transferlab.regularizers.source import StartingPoint


def _number(name: str, key: str, value: Any, spec: Key) -> float:
    bound = f"> {spec.minimum:g}" if spec.exclusive else f"≥ {spec.minimum:g}"
    fix = f"Fix: regularizer.{key}=<number {bound}>, e.g. regularizer.{key}={spec.default:g}."
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"regularizer.{key}={value!r}: must be a number {bound}. {fix}")
    number = float(value)
    if not math.isfinite(number) or number < spec.minimum or (spec.exclusive and number == spec.minimum):
        raise ConfigError(f"regularizer.{key}={value!r}: must be a finite number {bound}. {fix}")
    return number


def parse_regularizer(cfg: Mapping[str, Any]) -> tuple[str, dict[str, float]]:
    """Check the ``regularizer`` group and fill in defaults.

    Args:
        cfg: Plain mapping of the ``regularizer`` group.

    Returns:
        ``(name, values)`` with every key of that regularizer.

    Raises:
        ConfigError: Unknown name, unknown key, or a value that is not a number in range.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"regularizer={cfg!r}: expected a mapping with a 'name'. Fix: regularizer=none.")
    entries = registered()
    name = cfg.get("name", "none")
    name = "none" if name is None else name
    if not isinstance(name, str) or name not in entries:
        names = ", ".join(entries)
        fixes = " or ".join(f"regularizer={n}" for n in entries)
        raise ConfigError(f"regularizer.name={name!r}: unknown regularizer; choose one of {names}. Fix: {fixes}.")
    keys = entries[name].keys
    for key in cfg:
        if key != "name" and key not in keys:
            known = ", ".join(keys) or "none besides name"
            raise ConfigError(
                f"regularizer.{key}={cfg[key]!r}: regularizer={name} has no key {key!r} (its keys: {known}). "
                f"Fix: remove it or correct its spelling."
            )
    values = {key: _number(name, key, cfg.get(key, spec.default), spec) for key, spec in keys.items()}
    return name, values


def build_regularizer(cfg: Mapping[str, Any], backbone: nn.Module, start: StartingPoint) -> nn.Module | None:
    """Build the penalty named by ``regularizer.name`` (``none`` → ``None``).

    Args:
        cfg: Plain mapping of the ``regularizer`` group.
        backbone: The backbone before any training (its weights are the starting point).
        start: Where those weights came from (to find the source model and the weights without one).

    Returns:
        An ``nn.Module`` whose ``forward(module, x, features)`` returns a scalar penalty, or ``None``.

    Raises:
        ConfigError: Unknown ``regularizer.name``, unknown key or bad value.

    Example:
        >>> start = StartingPoint("efficientnet_lite0", "package")
        >>> build_regularizer({"name": "l2sp", "alpha": 0.1}, backbone, start)  # doctest: +SKIP
        L2SP(alpha=0.1, beta=0.01, anchored=..., decayed=0+head)
    """
    name, values = parse_regularizer(cfg)
    build = registered()[name].build
    return None if build is None else build(backbone, start, values)
