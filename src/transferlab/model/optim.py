"""Optimizer and scheduler for one step of the plan: named param groups, no decay on biases and norms."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from transferlab.strategies.plan import HEAD, StepPlan, param_group_name
from transferlab.strategies.schedule import lr_factor

NO_DECAY_SUFFIX = "/no_decay"


def _split_decay(params: list[nn.Parameter]) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    # Biases and norm weights are 0- or 1-d; decaying them hurts (timm and most recipes skip them).
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return decay, no_decay


def build_param_groups(
    step: StepPlan,
    head: list[nn.Parameter],
    backbone_groups: dict[str, list[nn.Parameter]],
    heads: dict[str, list[nn.Parameter]] | None = None,
) -> list[dict]:
    """Param groups named ``head`` and ``backbone.<group>``, each split into decay and ``/no_decay`` parts.

    Learning rates are the stage's base rates (the scheduler applies the per-epoch factor).

    Args:
        step: The plan step (its first-epoch learning rates define the base rates).
        head: Head parameters (an empty list makes no ``head`` group).
        backbone_groups: Trainable backbone parameters by group name.
        heads: More groups that learn at the head's rate, by group name (e.g. ``head.<task>`` of a
            multi-task model).

    Returns:
        Param-group dicts for a ``torch.optim`` optimizer; each carries ``name`` and ``base_name``.
    """
    stage = step.stage
    factor0 = lr_factor(stage, step.first_epoch)
    # group name → (name of its planned learning rate, parameters)
    named = {HEAD: (HEAD, head)} | {name: (HEAD, ps) for name, ps in (heads or {}).items()}
    named |= {param_group_name(g): (param_group_name(g), ps) for g, ps in backbone_groups.items()}
    groups = []
    for name, (lr_key, params) in named.items():
        base_lr = step.param_group_lrs[lr_key][0] / factor0
        decay, no_decay = _split_decay(params)
        for suffix, members, wd in (("", decay, stage.weight_decay), (NO_DECAY_SUFFIX, no_decay, 0.0)):
            if members:
                groups.append(
                    {
                        "params": members,
                        "lr": base_lr,
                        "weight_decay": wd,
                        "name": name + suffix,
                        "base_name": name,
                    }
                )
    return groups


def build_optimizer(step: StepPlan, param_groups: list[dict]) -> torch.optim.Optimizer:
    """The stage's optimizer over the given param groups."""
    stage = step.stage
    if stage.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=stage.lr_head, momentum=stage.momentum, nesterov=stage.momentum > 0)
    if stage.optimizer == "adam":
        return torch.optim.Adam(param_groups, lr=stage.lr_head)
    return torch.optim.AdamW(param_groups, lr=stage.lr_head)


def build_scheduler(step: StepPlan, optimizer: torch.optim.Optimizer) -> LambdaLR:
    """Per-epoch schedule that continues the stage's shape from the step's first epoch."""
    stage, offset = step.stage, step.first_epoch
    return LambdaLR(optimizer, lambda k: lr_factor(stage, offset + k))
