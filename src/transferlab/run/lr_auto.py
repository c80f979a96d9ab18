"""``lr: auto``: the range test of ``transferlab lr-find`` run inline, at the start of the stage.

It tests the weights the stage really starts from (the earlier stages' carried ones), over the stage's own param
groups, and the stage then trains at the suggested head rate with every other group at its planned ratio
(``lr_backbone / lr_head`` and ``lr_decay`` as configured: the configured rates set the shape, the test the
scale). The choice is kept in the run state, so a resumed run trains with the same rates without testing
again; it is logged and recorded in the stage's row (``lr_found``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import torch

from transferlab.run.assembly import RunParts
from transferlab.run.lr_find import range_test
from transferlab.run.lr_loaders import stage_loader
from transferlab.run.state import RunState
from transferlab.strategies.plan import Plan, compile_plan

log = logging.getLogger(__name__)


def find_stage_lr(parts: RunParts, stage_index: int, device: torch.device) -> dict[str, Any]:
    """Run the range test of stage ``stage_index`` on the module's current weights; the rates it chose."""
    stage = parts.plan.strategy.stages[stage_index]
    step = next(s for s in parts.plan.steps if s.stage_index == stage_index)
    loader = stage_loader(parts, step, device)
    result = range_test(parts.module, step, loader, device)
    lr = result.suggestion
    if not math.isfinite(lr):
        lr = stage.lr_head  # too short a trace to read a slope from: keep the planned rate
        log.warning(
            "lr=auto: stage %s: no suggestion (%s); keeping lr_head %g", stage.name, result.stopped, stage.lr_head
        )
    backbone = None if stage.lr_backbone is None else lr * stage.lr_backbone / stage.lr_head
    found = {"lr_head": lr, "lr_backbone": backbone, "minimum_tenth": result.minimum_tenth, "steps": len(result.lrs)}
    log.info(
        "lr=auto: stage %s trains at lr_head %.3g%s (range test: steepest descent of the smoothed loss; %s)",
        stage.name, lr, "" if backbone is None else f", lr_backbone {backbone:.3g}", result.stopped,
    )  # fmt: skip
    return found


def with_found_rates(parts: RunParts, state: RunState) -> RunParts:
    """``parts`` with its plan recompiled for the rates ``state.lr_found`` holds (unchanged when none)."""
    if not state.lr_found:
        return parts
    strategy = parts.plan.strategy
    stages = tuple(
        dataclasses.replace(s, lr_head=found["lr_head"], lr_backbone=found["lr_backbone"], lr_auto=False)
        if (found := state.lr_found.get(s.name)) is not None
        else s
        for s in strategy.stages
    )
    plan: Plan = compile_plan(dataclasses.replace(strategy, stages=stages), parts.plan.groups, parts.plan.head_params)
    return dataclasses.replace(parts, plan=plan)
