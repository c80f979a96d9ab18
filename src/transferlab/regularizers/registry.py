"""The regularizer registry: each regularizer module registers its name, its keys and its builder.

A new regularizer is one new file in this package (plus ``conf/regularizer/<name>.yaml``): it calls
:func:`register` at import time, and :func:`registered` imports every module of the package the first time
the registry is read. There is no list to edit elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from transferlab.config.discovery import import_submodules

#: Builds the penalty module from the backbone, its starting point and the checked values.
Builder = Callable[[nn.Module, Any, Mapping[str, float]], nn.Module]


@dataclass(frozen=True)
class Key:
    """A numeric key of a regularizer: its default and its lower bound (exclusive or not)."""

    default: float
    minimum: float = 0.0
    exclusive: bool = False


@dataclass(frozen=True)
class RegularizerEntry:
    """One registered regularizer."""

    name: str
    keys: Mapping[str, Key]
    build: Builder | None  # None: no penalty (``none``)


_REGISTRY: dict[str, RegularizerEntry] = {"none": RegularizerEntry("none", {}, None)}
_DISCOVERED = False


def register(name: str, keys: Mapping[str, Key]) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` as regularizer ``name`` with its numeric ``keys``.

    Raises:
        ValueError: When ``name`` is registered twice.
    """

    def add(builder: Builder) -> Builder:
        if name in _REGISTRY and _REGISTRY[name].build is not builder:
            raise ValueError(f"regularizer {name!r} registered twice")
        _REGISTRY[name] = RegularizerEntry(name, dict(keys), builder)
        return builder

    return add


def registered() -> dict[str, RegularizerEntry]:
    """Every regularizer, ``none`` first (imports the package's modules on first use)."""
    global _DISCOVERED
    if not _DISCOVERED:
        import_submodules(__package__ or "transferlab.regularizers")
        _DISCOVERED = True
    return dict(_REGISTRY)
