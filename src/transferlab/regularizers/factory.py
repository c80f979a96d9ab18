"""``build_regularizer``: the ``regularizer`` config group → a penalty module (or ``None``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from transferlab.errors import ConfigError


def build_regularizer(cfg: Mapping[str, Any], module: nn.Module, backbone_cfg: Mapping[str, Any]) -> nn.Module | None:
    """Build the penalty named by ``regularizer.name`` (``none`` → ``None``).

    Args:
        cfg: Plain mapping of the ``regularizer`` group.
        module: The TransferModule, before any training (its weights are the starting point).
        backbone_cfg: Plain mapping of the ``backbone`` group (``name``, ``weights``), to find the source model.

    Returns:
        An ``nn.Module`` whose ``forward(module, x, features)`` returns a scalar penalty, or ``None``.
    """
    name = cfg.get("name", "none")
    if name in (None, "none"):
        return None
    raise ConfigError(f"regularizer.name={name!r}: not available in this build; use regularizer=none.")
