"""Finding the plugins of a package: import every module in it, so that each registers itself.

Registries (data sources, regularizers) call :func:`import_submodules` the first time they are read; a new
source or regularizer is then one new file in its package, with no list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil


def import_submodules(package_name: str) -> list[str]:
    """Import every module directly inside ``package_name`` (on every entry of its ``__path__``).

    Returns:
        The full names of the modules imported.
    """
    package = importlib.import_module(package_name)
    names = [f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)]
    for name in names:
        importlib.import_module(name)
    return names
