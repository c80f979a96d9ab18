"""Backbones: one registry and factory over torchvision, timm and pip-packaged weights, plus safe loading.

Example:
    >>> from transferlab.backbones import create_backbone, list_backbones
    >>> backbone = create_backbone("efficientnet_lite0", weights="package")  # doctest: +SKIP
    >>> list_backbones("tv:resnet*")[:2]  # doctest: +SKIP
    ['tv:resnet101', 'tv:resnet152']
"""

from transferlab.backbones.base import Backbone, DataConfig, LayerGroup, module_group_index
from transferlab.backbones.module import ModelBackbone
from transferlab.backbones.packaged import load_packaged_state_dict
from transferlab.backbones.registry import check_backbone, create_backbone, list_backbones
from transferlab.backbones.weight_files import WeightsFile, read_weights_file
from transferlab.backbones.weights import LoadReport, load_weights_file

__all__ = [
    "Backbone",
    "DataConfig",
    "LayerGroup",
    "LoadReport",
    "ModelBackbone",
    "WeightsFile",
    "check_backbone",
    "create_backbone",
    "list_backbones",
    "load_packaged_state_dict",
    "load_weights_file",
    "module_group_index",
    "read_weights_file",
]
