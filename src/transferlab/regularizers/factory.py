"""``build_regularizer``: the ``regularizer`` config group → a penalty module (or ``None``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from transferlab.errors import ConfigError
from transferlab.regularizers.l2sp import L2SP
from transferlab.regularizers.lwf import LwF
from transferlab.regularizers.source import find_source_head, new_backbone_params

log = logging.getLogger(__name__)

#: Per regularizer: its keys, their defaults, and the smallest allowed value (and whether it is exclusive).
_KEYS: dict[str, dict[str, tuple[float, float, bool]]] = {
    "none": {},
    "l2sp": {"alpha": (0.01, 0.0, False), "beta": (0.01, 0.0, False)},
    "lwf": {"weight": (1.0, 0.0, False), "temperature": (2.0, 0.0, True)},
}


def _number(name: str, key: str, value: Any, minimum: float, exclusive: bool) -> float:
    bound = f"> {minimum:g}" if exclusive else f"≥ {minimum:g}"
    fix = f"Fix: regularizer.{key}=<number {bound}>, e.g. regularizer.{key}={_KEYS[name][key][0]:g}."
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"regularizer.{key}={value!r}: must be a number {bound}. {fix}")
    number = float(value)
    if not math.isfinite(number) or number < minimum or (exclusive and number == minimum):
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
    name = cfg.get("name", "none")
    name = "none" if name is None else name
    if name not in _KEYS:
        raise ConfigError(
            f"regularizer.name={name!r}: unknown regularizer; choose one of {', '.join(_KEYS)}. "
            f"Fix: regularizer=l2sp, regularizer=lwf or regularizer=none."
        )
    keys = _KEYS[name]
    for key in cfg:
        if key != "name" and key not in keys:
            known = ", ".join(keys) or "none besides name"
            raise ConfigError(
                f"regularizer.{key}={cfg[key]!r}: regularizer={name} has no key {key!r} (its keys: {known}). "
                f"Fix: remove it or correct its spelling."
            )
    values = {key: _number(name, key, cfg.get(key, default), low, excl) for key, (default, low, excl) in keys.items()}
    return name, values


def _l2sp(module: nn.Module, backbone_cfg: Mapping[str, Any], values: dict[str, float]) -> nn.Module:
    new = new_backbone_params(module, backbone_cfg)
    if new:
        log.info("L2-SP: %d backbone tensors have no starting point (new or random init); they get beta·L2", len(new))
    return L2SP(module.backbone, values["alpha"], values["beta"], new)


def _lwf(module: nn.Module, backbone_cfg: Mapping[str, Any], values: dict[str, float]) -> nn.Module:
    num_features = int(module.head.in_features)
    head, reason = find_source_head(module, backbone_cfg, num_features)
    if head is None:
        log.info("LwF: no source head (%s); distilling backbone features instead of source-task logits", reason)
        return LwF(module.backbone, values["weight"], values["temperature"], None)
    log.info("LwF: source head = %s, %d classes", head.origin, head.weight.shape[0])
    return LwF(module.backbone, values["weight"], values["temperature"], head.as_linear())


_BUILDERS: dict[str, Callable[[nn.Module, Mapping[str, Any], dict[str, float]], nn.Module]] = {
    "l2sp": _l2sp,
    "lwf": _lwf,
}


def build_regularizer(cfg: Mapping[str, Any], module: nn.Module, backbone_cfg: Mapping[str, Any]) -> nn.Module | None:
    """Build the penalty named by ``regularizer.name`` (``none`` → ``None``).

    Args:
        cfg: Plain mapping of the ``regularizer`` group.
        module: The TransferModule, before any training (its weights are the starting point).
        backbone_cfg: Plain mapping of the ``backbone`` group (``name``, ``weights``), to find the source model.

    Returns:
        An ``nn.Module`` whose ``forward(module, x, features)`` returns a scalar penalty, or ``None``.

    Raises:
        ConfigError: Unknown ``regularizer.name``, unknown key or bad value.

    Example:
        >>> build_regularizer({"name": "l2sp", "alpha": 0.1}, module, {"name": "efficientnet_lite0"})  # doctest: +SKIP
        L2SP(alpha=0.1, beta=0.01, anchored=..., decayed=0+head)
    """
    name, values = parse_regularizer(cfg)
    if name == "none":
        return None
    return _BUILDERS[name](module, backbone_cfg, values)
