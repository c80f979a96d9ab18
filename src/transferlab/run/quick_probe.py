"""The quick linear probe ``strategy=auto`` reads: closed-form ridge regression on frozen features, train → val.

One pass of the frozen backbone (eval mode, no grad) over the train and val splits — never test — gives the
features, centred on the training split's mean and divided by their RMS, and a ridge classifier (one-hot
targets, least squares with an L2 penalty, solved exactly in float64) is fitted for a few penalties. The
probe's score is the best validation accuracy among them: how well the frozen features already separate the
classes, in seconds and with no training loop, which is what the rule needs (not a model to keep).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from transferlab.run.feature_cache import compute_features

#: Ridge penalties, as multiples of the training-set size (centred features over their RMS: ``trace(XᵀX)/d = n``).
PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


@dataclass(frozen=True)
class RidgeFit:
    """A ridge classifier on raw (unstandardised) features: ``scores = features @ weight.T + bias``.

    Attributes:
        weight: ``(classes, d)``.
        bias: ``(classes,)``.
        penalty: The chosen penalty, as a multiple of the training-set size.
        val_acc: Its validation accuracy.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    penalty: float
    val_acc: float


def fit_ridge(
    train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, classes: int
) -> RidgeFit:
    """The ridge classifier of the best validation accuracy over :data:`PENALTIES` (ties: the larger penalty).

    Args:
        train_x: ``(n, d)`` training features.
        train_y: ``(n,)`` class indices.
        val_x: ``(m, d)`` validation features.
        val_y: ``(m,)`` class indices.
        classes: Number of classes.
    """
    x = train_x.double()
    mean = x.mean(0)
    # One scale for all features (their RMS), not one per feature: a per-feature standardisation would blow
    # near-constant features up to unit variance, and a head built from it would amplify their noise once the
    # backbone trains (a ridge-initialised fine-tune diverged that way).
    rms = float((x - mean).pow(2).mean().sqrt().clamp_min(1e-12))
    x = (x - mean) / rms
    v = (val_x.double() - mean) / rms
    targets = torch.nn.functional.one_hot(train_y.long(), classes).double()
    offset = targets.mean(0)
    targets = targets - offset
    n, d = x.shape
    # The dual form when there are fewer samples than features (few-shot data): an n × n system, not d × d.
    dual = n <= d
    gram = x @ x.T if dual else x.T @ x
    eye = torch.eye(gram.shape[0], dtype=gram.dtype)
    best: tuple[float, float, torch.Tensor] | None = None
    for alpha in PENALTIES:
        system = gram + alpha * n * eye
        weights = x.T @ torch.linalg.solve(system, targets) if dual else torch.linalg.solve(system, x.T @ targets)
        acc = float(((v @ weights + offset).argmax(1) == val_y.long()).double().mean())
        if best is None or acc >= best[0]:
            best = (acc, alpha, weights)
    assert best is not None
    acc, alpha, weights = best
    raw = weights / rms  # back to raw features: (x - mean) / rms @ W = x @ (W / rms) - mean / rms @ W
    bias = offset - (mean / rms) @ weights
    return RidgeFit(raw.T.float().contiguous(), bias.float(), alpha, acc)


def ridge_accuracy(
    train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, classes: int
) -> tuple[float, float]:
    """:func:`fit_ridge`'s validation accuracy and penalty."""
    fit = fit_ridge(train_x, train_y, val_x, val_y, classes)
    return fit.val_acc, fit.penalty


def quick_probe(backbone: nn.Module, data: Any, device: torch.device, precision: str = "32-true") -> dict[str, Any]:
    """Score a quick linear probe of ``backbone``'s frozen features on ``data`` (see the module docstring).

    Args:
        backbone: The pretrained backbone (left as it was: the pass runs in eval mode, without gradients).
        data: A set-up single-label data module with in-memory ``train_set`` and ``val_set``.
        device: Where the feature pass runs.
        precision: The run's precision (sets autocast for the pass).

    Returns:
        ``{"probe_acc", "probe_seconds", "penalty"}``.
    """
    start = time.perf_counter()
    tensors = compute_features(backbone, data, device, precision, splits=("train", "val"))
    acc, penalty = ridge_accuracy(
        tensors["train.features"].flatten(1),
        tensors["train.labels"],
        tensors["val.features"].flatten(1),
        tensors["val.labels"],
        int(data.num_classes),
    )
    return {"probe_acc": acc, "probe_seconds": time.perf_counter() - start, "penalty": penalty}
