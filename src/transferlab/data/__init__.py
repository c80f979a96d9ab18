"""Data sets as LightningDataModules whose preprocessing comes from the backbone's ``DataConfig``.

``build_data(cfg.data, backbone.data_config)`` dispatches on ``data.name`` through the registry
(:mod:`transferlab.data.registry`: ``digits``, ``image_folder``, ``label_file``, ``torchvision``, ``synthetic``,
``multitask``); see ``conf/data/*.yaml`` for each set's keys.
"""

from transferlab.data.base import DataModule, TransferData, TransferDataModule
from transferlab.data.digits import DigitsDataModule
from transferlab.data.factory import build_data, check_data
from transferlab.data.image_folder import ImageFolderDataModule
from transferlab.data.label_file import LabelFileDataModule
from transferlab.data.registry import data_modules, register_data
from transferlab.data.synthetic import SyntheticDataModule
from transferlab.data.torchvision_sets import TORCHVISION_SETS, TorchvisionDataModule
from transferlab.data.transforms import AugmentSpec

__all__ = [
    "TORCHVISION_SETS",
    "AugmentSpec",
    "DataModule",
    "DigitsDataModule",
    "ImageFolderDataModule",
    "LabelFileDataModule",
    "SyntheticDataModule",
    "TorchvisionDataModule",
    "TransferData",
    "TransferDataModule",
    "build_data",
    "check_data",
    "data_modules",
    "register_data",
]
