"""A saved model ready to predict: backbone + head in eval mode, its preprocessing, class names, thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from transferlab.backbones.base import DataConfig
from transferlab.backbones.registry import create_backbone
from transferlab.deploy.preprocess import Preprocessing, preprocessing_for
from transferlab.errors import WeightsError
from transferlab.rundir.reload import SavedModel, load_saved_model


class Classifier(nn.Module):
    """``head(backbone.forward_features(x))``: the trained network without the training machinery.

    The head's dropout is left out (it is the identity in eval mode), and so are the task's losses and metrics.

    Args:
        backbone: The backbone (random init; the saved weights are loaded after).
        head: ``nn.Linear(num_features, num_classes)``.
    """

    def __init__(self, backbone: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, classes)`` of a normalised float batch ``(B, C, H, W)``."""
        return self.head(self.backbone.forward_features(x))  # type: ignore[operator]


@dataclass
class LoadedModel:
    """What prediction and export need of a saved model.

    Attributes:
        saved: The saved model as read from disk (path, config, metadata).
        network: The classifier, in eval mode, on the CPU.
        preprocessing: How an image becomes its input.
        class_names: Output names, index-aligned.
        multi_label: One sigmoid per label (decided by ``thresholds``) instead of one softmax.
        thresholds: A multi-label head's decision thresholds, index-aligned (``None`` for single-label).
    """

    saved: SavedModel
    network: Classifier
    preprocessing: Preprocessing
    class_names: list[str]
    multi_label: bool
    thresholds: torch.Tensor | None

    @property
    def path(self) -> Path:
        """The file the weights came from (``model.safetensors`` or a ``.ckpt``)."""
        return self.saved.path

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax over classes, or a sigmoid per label for a multi-label model (float32)."""
        logits = logits.float()
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)


def _preprocessing(saved: SavedModel, data_config: DataConfig) -> Preprocessing:
    if saved.preprocessing is not None:
        try:
            return Preprocessing.from_dict(saved.preprocessing)
        except ValueError as err:
            raise WeightsError(f"{saved.path}: {err}. Fix: pass the run's own model file, unedited.") from None
    return preprocessing_for(saved.config.get("data") or {}, data_config)  # older files: from the run's config


def load_for_inference(path: str | Path) -> LoadedModel:
    """Rebuild a saved model (run dir, ``model.safetensors`` or ``.ckpt``) for prediction on this machine.

    Nothing but the file is read: not the training data, not the packaged weights (the architecture is built
    with random weights, then the saved tensors are loaded strictly).

    Raises:
        WeightsError: When the file is missing, is not a transferlab model, or its tensors do not fit the
            architecture it names.
    """
    saved = load_saved_model(path)
    backbone = create_backbone(saved.backbone_name, weights=None)
    weight = saved.state_dict.get("head.weight")
    if weight is None or weight.ndim != 2:
        raise WeightsError(
            f"{saved.path}: no head.weight tensor of a linear head in the file. Fix: pass a model written by "
            "'transferlab train' (its model.safetensors, or a checkpoints/<stage>/last.ckpt)."
        )
    head = nn.Linear(weight.shape[1], weight.shape[0])
    network = Classifier(backbone, head)
    keep = ("head.weight", "head.bias")
    state = {k: v for k, v in saved.state_dict.items() if k.startswith("backbone.") or k in keep}
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise WeightsError(
            f"{saved.path}: its tensors do not fit the {saved.backbone_name} architecture it names "
            f"({' '.join(first[:2])[:300]}). Fix: pass the run's own model file, unedited."
        ) from None
    network.eval().requires_grad_(False)
    preprocessing = _preprocessing(saved, backbone.data_config)  # type: ignore[attr-defined]
    outputs = head.out_features
    names = saved.class_names if len(saved.class_names) == outputs else [str(i) for i in range(outputs)]
    thresholds = saved.state_dict.get("head.thresholds") if saved.multi_label else None
    if saved.multi_label and thresholds is None:
        thresholds = torch.full((head.out_features,), 0.5)
    return LoadedModel(saved, network, preprocessing, names, saved.multi_label, thresholds)
