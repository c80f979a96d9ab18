"""Data sets as LightningDataModules whose preprocessing comes from the backbone's ``DataConfig``.

``build_data(cfg.data, backbone.data_config)`` dispatches on ``data.name`` (``digits``, ``image_folder``,
``torchvision``, ``synthetic``); see ``conf/data/*.yaml`` for each set's keys.
"""

from transferlab.data.base import DataModule, TransferData, TransferDataModule
from transferlab.data.digits import DigitsDataModule
from transferlab.data.factory import DATA_MODULES, build_data, check_data
from transferlab.data.image_folder import ImageFolderDataModule
from transferlab.data.synthetic import SyntheticDataModule
from transferlab.data.torchvision_sets import TORCHVISION_SETS, TorchvisionDataModule
from transferlab.data.transforms import AugmentSpec

__all__ = [
    "DATA_MODULES",
    "TORCHVISION_SETS",
    "AugmentSpec",
    "DataModule",
    "DigitsDataModule",
    "ImageFolderDataModule",
    "SyntheticDataModule",
    "TorchvisionDataModule",
    "TransferData",
    "TransferDataModule",
    "build_data",
    "check_data",
]
