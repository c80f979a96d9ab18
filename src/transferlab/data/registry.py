"""The data-source registry: each data module registers itself under its ``data.name``.

A new data source is one new file in this package (a class decorated with :func:`register_data`, with
``name`` and ``from_config``) plus ``conf/data/<name>.yaml``. :func:`data_modules` imports every module of the
package the first time it is read, so nothing else lists the sources.
"""

from __future__ import annotations

from typing import Any, TypeVar

from transferlab.config.discovery import import_submodules

T = TypeVar("T")

_REGISTRY: dict[str, Any] = {}
_DISCOVERED = False


def register_data(cls: T) -> T:
    """Class decorator: register a data module under its ``name`` attribute.

    Raises:
        ValueError: When the class has no ``name`` or another class has it already.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls!r}: a data source needs a non-empty 'name'")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"data source {name!r} registered twice ({_REGISTRY[name]!r} and {cls!r})")
    _REGISTRY[name] = cls
    return cls


def data_modules() -> dict[str, Any]:
    """``data.name`` → data module class, for every source (imports the package's modules on first use)."""
    global _DISCOVERED
    if not _DISCOVERED:
        import_submodules(__package__ or "transferlab.data")
        _DISCOVERED = True
    return dict(_REGISTRY)
