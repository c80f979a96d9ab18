"""``strategy=auto`` in the assembly: read the rule's inputs from the set-up data and the backbone, then choose.

The rule itself is pure (``strategies/auto.py``); this module gathers what it reads — training images per class
from the training split's labels, the class count, the image size against the backbone's pretraining size,
and, only where the rule needs it, the quick probe's validation accuracy (``run/quick_probe.py``) — and says
in ``notes`` why an input is missing (no weights loaded, multi-label data, no in-memory splits).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from transferlab.data.multitask import MultiTaskDataModule
from transferlab.errors import ConfigError
from transferlab.model.tasks.losses import label_counts
from transferlab.run.quick_probe import quick_probe
from transferlab.run.spec import RunConfig
from transferlab.strategies.auto import AutoInputs, needs_probe
from transferlab.strategies.auto_choice import choose

log = logging.getLogger(__name__)


def data_inputs(config: RunConfig, backbone: nn.Module, data: Any) -> AutoInputs:
    """The inputs that need no forward pass: shots per class, classes, image and pretraining sizes."""
    if isinstance(data, MultiTaskDataModule):
        if config.strategy.auto is not None and config.strategy.auto.recipe is None:
            raise ConfigError(
                "strategy=auto with data=multitask: the rule reads one task's images per class. "
                "Fix: name a strategy (strategy=lp_ft), or pin a recipe (strategy.auto.recipe=lp_ft)."
            )
        return AutoInputs(notes=("multi-task data",))
    pretrain = getattr(getattr(backbone, "data_config", None), "input_size", None)
    image_size = getattr(getattr(data, "options", None), "image_size", None)
    notes: list[str] = []
    shots = smallest = None
    classes = int(data.num_classes) if hasattr(data, "num_classes") else None
    if getattr(data, "is_setup", False) and classes:
        counts = label_counts(data.train_targets(), classes)
        shots, smallest = float(np.median(counts)), int(counts.min())
    else:
        notes.append("no training split read here")
    return AutoInputs(
        shots=shots,
        min_shots=smallest,
        classes=classes,
        image_size=None if image_size is None else int(image_size),
        pretrain_size=None if pretrain is None else int(pretrain),
        notes=tuple(notes),
    )


def _probe_blocker(data: Any, load_weights: bool) -> str | None:
    if not load_weights:
        return "no weights loaded (transferlab plan loads them for strategy=auto)"
    if getattr(data, "multi_label", False):
        return "the quick probe scores single-label data only"
    if getattr(data, "train_set", None) is None or getattr(data, "val_set", None) is None:
        return f"{type(data).__name__} has no in-memory train and val splits"
    if len(data.val_set) == 0:
        return "the val split is empty"
    return None


def resolve(
    config: RunConfig, backbone: nn.Module, data: Any, *, load_weights: bool, device: torch.device
) -> RunConfig:
    """``config`` with ``strategy=auto`` replaced by the recipe the rule chooses (unchanged for other strategies).

    Args:
        config: The typed config.
        backbone: The built backbone (its pretrained weights loaded when ``load_weights``).
        data: The data module, set up (``fit``) or only checked.
        load_weights: Whether the backbone holds its real weights (else no quick probe).
        device: Where the quick probe's feature pass runs.

    Returns:
        The config whose strategy holds the chosen stages and the ``choice`` record.
    """
    strategy = config.strategy
    if strategy.auto is None:
        return config
    inputs = data_inputs(config, backbone, data)
    if needs_probe(strategy.auto, inputs):
        blocker = _probe_blocker(data, load_weights)
        if blocker is None:
            found = quick_probe(backbone, data, device, str(config.trainer.kwargs.get("precision", "32-true")))
            inputs = dataclasses.replace(
                inputs, probe_acc=found["probe_acc"], probe_seconds=round(found["probe_seconds"], 3)
            )
        else:
            inputs = dataclasses.replace(inputs, notes=(*inputs.notes, blocker))
    chosen = choose(strategy, inputs)
    if any(st.head_init for st in chosen.stages) and (
        getattr(data, "multi_label", False) or isinstance(data, MultiTaskDataModule)
    ):  # the ridge head is a single-label classifier's: the recipe's head starts fresh instead
        stages = tuple(dataclasses.replace(st, head_init=None) for st in chosen.stages)
        reasons = [*chosen.choice["reasons"], "head_init off: the closed-form probe is for single-label data"]
        chosen = dataclasses.replace(chosen, stages=stages, choice={**chosen.choice, "reasons": reasons})
    choice = chosen.choice or {}
    log.info("strategy=auto chose %s: %s (pin it: %s)", choice["recipe"], "; ".join(choice["reasons"]), choice["pin"])
    return dataclasses.replace(config, strategy=chosen)
