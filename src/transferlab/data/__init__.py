"""Data sets as LightningDataModules whose preprocessing comes from the backbone's ``DataConfig``.

``build_data(cfg.data, backbone.data_config)`` dispatches on ``data.name`` through the registry
(:mod:`transferlab.data.registry`: ``digits``, ``image_folder``, ``label_file``, ``torchvision``, ``synthetic``,
``multitask``); see ``conf/data/*.yaml`` for each set's keys.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name → the module that defines it. Imported on first use (PEP 562), so that reading the transforms
#: or the options (what ``predict`` and ``export`` need) does not import Lightning with the data modules.
_EXPORTS = {
    "TORCHVISION_SETS": "torchvision_sets",
    "AugmentSpec": "transforms",
    "DataModule": "base",
    "DigitsDataModule": "digits",
    "ImageFolderDataModule": "image_folder",
    "LabelFileDataModule": "label_file",
    "SyntheticDataModule": "synthetic",
    "TorchvisionDataModule": "torchvision_sets",
    "TransferData": "base",
    "TransferDataModule": "base",
    "build_data": "factory",
    "check_data": "factory",
    "data_modules": "registry",
    "register_data": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
