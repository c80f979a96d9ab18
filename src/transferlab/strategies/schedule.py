"""Per-epoch learning-rate shapes: one pure function that both the plan and the optimizer use.

Using the same function in ``transferlab plan`` and in the training scheduler is what makes the printed plan
and the learning rates seen during training equal, epoch by epoch.
"""

from __future__ import annotations

import math

from transferlab.strategies.spec import StageSpec


def lr_factor(stage: StageSpec, epoch: int) -> float:
    """Multiplier of the base learning rate at ``epoch`` (0-based, within the stage).

    Linear warm-up over ``warmup_epochs`` (epoch ``e`` gets ``(e + 1) / (warmup + 1)``), then the stage's
    shape over the remaining epochs, decaying towards ``min_lr_ratio``.

    Args:
        stage: The stage spec (epochs, scheduler, warmup_epochs, min_lr_ratio).
        epoch: Epoch index within the stage.

    Returns:
        The factor, in ``(0, 1]``.
    """
    warm = stage.warmup_epochs
    if epoch < warm:
        return (epoch + 1) / (warm + 1)
    if stage.scheduler == "constant":
        return 1.0
    span = stage.epochs - warm
    t = (epoch - warm) / span if span > 0 else 0.0
    floor = stage.min_lr_ratio
    if stage.scheduler == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    return floor + (1.0 - floor) * (1.0 - t)  # linear
