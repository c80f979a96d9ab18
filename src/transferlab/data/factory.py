"""One registry, one factory: ``build_data(cfg.data, backbone.data_config)`` → a ready LightningDataModule.

Example:
    >>> from omegaconf import OmegaConf
    >>> dm = build_data(OmegaConf.to_container(cfg.data, resolve=True), backbone.data_config)
    >>> dm.setup(); print(dm.describe())

"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from transferlab.backbones.base import DataConfig
from transferlab.data.base import TransferDataModule
from transferlab.data.options import COMMON_KEYS, check_keys
from transferlab.data.registry import data_modules
from transferlab.errors import ConfigError


def valid_keys(name: str) -> tuple[str, ...]:
    """All keys the data set ``name`` accepts (common keys first, for this package's file and tensor sets)."""
    cls = data_modules()[name]
    return (COMMON_KEYS + cls.KEYS) if issubclass(cls, TransferDataModule) else tuple(cls.KEYS)


def build_data(cfg: Mapping[str, Any], data_config: DataConfig) -> TransferDataModule:
    """Build the data module that ``cfg`` names, with preprocessing from the backbone's ``data_config``.

    Args:
        cfg: The plain ``data`` config group (``OmegaConf.to_container(cfg.data, resolve=True)``); a
            ``DictConfig`` is converted here.
        data_config: The backbone's preprocessing (input size, mean/std, interpolation, crop, channels).

    Returns:
        A LightningDataModule with ``num_classes``, ``class_names``, ``augment_enabled`` and ``describe()``;
        splits are built by ``setup()``.

    Raises:
        ConfigError: on an unknown ``data.name``, an unknown key or a bad value.
        DataError: when the data cannot be found (missing folder, empty class folder, …).

    """
    if not isinstance(cfg, Mapping):  # a DictConfig is a MutableMapping, so this is a plain type error
        raise ConfigError(f"data={cfg!r}: expected a mapping with at least 'name'. Fix: data=digits.")
    if type(cfg).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    name = cfg.get("name")
    sources = data_modules()
    if not isinstance(name, str) or name not in sources:
        close = difflib.get_close_matches(str(name), list(sources), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(
            f"data.name={name!r}: unknown data set; {hint}valid names: {', '.join(sorted(sources))}. "
            f"Fix: data=<one of conf/data/*.yaml>."
        )
    check_keys(cfg, valid_keys(name))
    return sources[name].from_config(cfg, data_config)


def check_data(cfg: Mapping[str, Any], data_config: DataConfig) -> TransferDataModule:
    """Validate a ``data`` config without reading any data (what ``transferlab validate`` runs).

    Builds the module (typed reading of every key; an image folder lists its class folders and files) and
    checks that its sources can be found (:meth:`TransferDataModule.check_sources`), but never calls ``setup``:
    no image is opened, no data set file is read, nothing downloads.

    Args:
        cfg: The plain ``data`` config group.
        data_config: The backbone's preprocessing.

    Returns:
        The built module (not set up); its ``num_classes`` is known.

    Raises:
        ConfigError: on a bad key or value.
        DataError: when the data cannot be found.

    """
    data = build_data(cfg, data_config)
    data.check_sources()
    return data
