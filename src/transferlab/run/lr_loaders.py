"""The training batches a stage's first step reads: cached backbone features when it may, else the images."""

from __future__ import annotations

import logging
from typing import Any

import torch

from transferlab.run.assembly import RunParts
from transferlab.run.distributed import is_rank_zero
from transferlab.run.feature_cache import FeatureCache, cache_blocker, cached_loaders
from transferlab.strategies.plan import StepPlan

log = logging.getLogger(__name__)


def stage_loader(parts: RunParts, step: StepPlan, device: torch.device) -> Any:
    """The step's training loader, with ``parts.module`` set to the step and to the matching input kind.

    The same rule as the run's: a step whose backbone is entirely frozen (and not augmented, mixed or
    regularised) trains the head on cached features.
    """
    module, data, options = parts.module, parts.data, parts.config.options
    module.set_step(step)
    module.train()
    if cache_blocker(module, data, options.feature_cache.enabled) is None:
        precision = str(parts.config.trainer.kwargs["precision"])
        cache = FeatureCache(options.feature_cache.dir)
        cached = cache.get(module.backbone, data, parts.config.data, device, precision, is_rank_zero())
        log.info("lr-find: the head trains on cached features (%s)", cached.source)
        module.set_step(step, inputs="features")
        return cached_loaders(cached, data, device)["train"]
    return data.train_dataloader()
