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
from transferlab.data.digits import DigitsDataModule
from transferlab.data.image_folder import ImageFolderDataModule
from transferlab.data.options import COMMON_KEYS, check_keys
from transferlab.data.synthetic import SyntheticDataModule
from transferlab.data.torchvision_sets import TorchvisionDataModule
from transferlab.errors import ConfigError

DATA_MODULES: dict[str, type[TransferDataModule]] = {
    cls.name: cls for cls in (DigitsDataModule, ImageFolderDataModule, TorchvisionDataModule, SyntheticDataModule)
}
"""Registry: ``data.name`` → data module class."""


def valid_keys(name: str) -> tuple[str, ...]:
    """All keys the data set ``name`` accepts (common keys first)."""
    return COMMON_KEYS + DATA_MODULES[name].KEYS


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
    if name == "multitask":  # several data sets, each built by this factory (multi-task hard sharing)
        from transferlab.data.multitask import MultiTaskDataModule  # imports this module

        return MultiTaskDataModule.from_config(cfg, data_config)  # type: ignore[return-value]
    if name not in DATA_MODULES:
        close = difflib.get_close_matches(str(name), list(DATA_MODULES), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(
            f"data.name={name!r}: unknown data set; {hint}valid names: {', '.join(DATA_MODULES)}. "
            f"Fix: data=<one of conf/data/*.yaml>."
        )
    check_keys(cfg, valid_keys(name))
    return DATA_MODULES[name].from_config(cfg, data_config)


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
