"""``head_init: ridge``: the stage's head starts as a closed-form linear probe of the frozen features.

LP-FT (Kumar et al., 2022) fine-tunes from a *converged* linear probe; a few epochs of SGD on a few hundred
images leave the head far from it (on the peer comparison's 19-class photos a 2-epoch probe scored 0.70 val
accuracy, the ridge probe 0.81). So before the stage trains, one pass of the backbone in eval mode over the
train and val splits (never test) gives features, :func:`~transferlab.run.quick_probe.fit_ridge` fits a ridge
classifier (penalty chosen on val), and its scores, multiplied by the logit scale that minimises the val
cross-entropy, become the head's weights and bias — a starting point that training then refines. The random
states are put back afterwards, so a run with and without the pass draws the same batches.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.run.assembly import RunParts
from transferlab.run.feature_cache import compute_features
from transferlab.run.quick_probe import fit_ridge

log = logging.getLogger(__name__)

#: Logit scales tried: ridge scores live in about [0, 1] (one-hot targets); cross-entropy wants a sharper scale.
#: The cap keeps a head fitted on eval-mode features from starting over-confident where the stage then trains
#: the backbone (train-mode BatchNorm features differ; the peer runs chose 1-8).
SCALES = (1.0, 2.0, 4.0, 8.0, 16.0)


def _best_scale(scores: torch.Tensor, labels: torch.Tensor) -> float:
    losses = [float(F.cross_entropy(scores * s, labels)) for s in SCALES]
    return SCALES[int(np.argmin(losses))]


def ridge_head(parts: RunParts, stage_name: str, device: torch.device) -> dict[str, Any]:
    """Set the head of ``parts.module`` to the ridge probe of its backbone's current features (see above).

    Returns:
        What was done: ``{"penalty", "scale", "val_acc"}`` (kept in the stage's row).
    """
    start = time.perf_counter()
    module, data = parts.module, parts.data
    head = module.task.head  # type: ignore[union-attr]
    states = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        precision = str(parts.config.trainer.kwargs.get("precision", "32-true"))
        tensors = compute_features(module.backbone, data, device, precision, splits=("train", "val"))
    random.setstate(states[0])
    np.random.set_state(states[1])
    train_x, val_x = tensors["train.features"].flatten(1), tensors["val.features"].flatten(1)
    val_y = tensors["val.labels"]
    fit = fit_ridge(train_x, tensors["train.labels"], val_x, val_y, head.out_features)
    scale = _best_scale(val_x @ fit.weight.T + fit.bias, val_y)
    with torch.no_grad():
        head.weight.copy_(fit.weight * scale)
        head.bias.copy_(fit.bias * scale)
    # no seconds in the record: it is part of the run's results, which a resumed run reproduces exactly
    found = {"penalty": fit.penalty, "scale": scale, "val_acc": round(fit.val_acc, 6)}
    log.info(
        "head_init=ridge: stage %s starts from a ridge probe (val acc %.3f, penalty %g × n, logit scale %g, %.1f s)",
        stage_name, fit.val_acc, fit.penalty, scale, time.perf_counter() - start,
    )  # fmt: skip
    return found
