"""Compile a :class:`StrategySpec` against a backbone's layer groups into an explicit, printable plan.

A plan is a flat list of *steps*. A step is a run of epochs with one trainable set; gradual unfreezing
splits a stage into several steps. The engine runs each step as its own ``Trainer.fit`` with a fresh
optimizer (so param groups and DDP wrapping always match the trainable set), while the learning-rate
schedule spans the whole stage.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from transferlab.errors import ConfigError
from transferlab.strategies.schedule import lr_factor
from transferlab.strategies.spec import StageSpec, StrategySpec

HEAD = "head"


@dataclass(frozen=True)
class GroupInfo:
    """What the plan needs to know about one backbone layer group.

    Attributes:
        name: Group name (``stem``, ``group1``, …).
        num_params: Number of parameter elements in the group.
        num_norm_params: Elements that belong to BatchNorm affine weights (frozen by ``bn: frozen``).
        num_bias_params: Elements of bias tensors (what BitFit trains), adapter biases excluded.
        num_adapter_params: Elements of adapter tensors (LoRA), which ``params: adapter`` trains.
        num_norm_bias_params: Elements of BatchNorm biases (frozen with ``bn: frozen`` under BitFit too).
    """

    name: str
    num_params: int
    num_norm_params: int = 0
    num_bias_params: int = 0
    num_adapter_params: int = 0
    num_norm_bias_params: int = 0


@dataclass(frozen=True)
class StepPlan:
    """One ``Trainer.fit``: a run of epochs of one stage with a fixed trainable set.

    Attributes:
        stage_index: Index of the stage in the strategy.
        stage: The stage spec.
        step_index: Index of the step within its stage.
        first_epoch: First epoch of the step, counted within the stage.
        global_first_epoch: First epoch of the step, counted over the whole run.
        epochs: Number of epochs of the step.
        trainable_groups: Backbone group names that train (the head always trains).
        trainable_params: Trainable parameter elements (head included).
        total_params: All parameter elements (backbone + head).
        param_group_lrs: Param-group name → learning rate at each epoch of the step.
    """

    stage_index: int
    stage: StageSpec
    step_index: int
    first_epoch: int
    global_first_epoch: int
    epochs: int
    trainable_groups: tuple[str, ...]
    trainable_params: int
    total_params: int
    param_group_lrs: dict[str, tuple[float, ...]]

    @property
    def label(self) -> str:
        """Short label such as ``finetune`` or ``finetune.step2``."""
        return self.stage.name if self.step_index == 0 else f"{self.stage.name}.step{self.step_index}"


@dataclass(frozen=True)
class Plan:
    """The compiled strategy: every step in order.

    Attributes:
        strategy: The strategy spec it came from.
        groups: Backbone groups, stem → top.
        head_params: Parameter elements of the head.
        steps: The steps in run order.
    """

    strategy: StrategySpec
    groups: tuple[GroupInfo, ...]
    head_params: int
    steps: tuple[StepPlan, ...]

    @property
    def total_params(self) -> int:
        """All parameter elements (backbone + head)."""
        return self.head_params + sum(g.num_params for g in self.groups)

    def epoch_rows(self) -> list[tuple[int, StepPlan, int, dict[str, float]]]:
        """Expand the plan per epoch.

        Returns:
            ``(global_epoch, step, epoch_in_step, {param_group: lr})`` for every epoch of the run.
        """
        rows = []
        for step in self.steps:
            for k in range(step.epochs):
                lrs = {name: values[k] for name, values in step.param_group_lrs.items()}
                rows.append((step.global_first_epoch + k, step, k, lrs))
        return rows


def param_group_name(group: str) -> str:
    """Optimizer/TensorBoard name of a backbone group (``backbone.group3``)."""
    return f"backbone.{group}"


def _initial_trainable(stage: StageSpec, names: Sequence[str], where: str, shared: int | None) -> set[int]:
    spec = stage.trainable
    if spec == "head":
        return set()
    if spec == "all":
        return set(range(len(names)))
    if spec == "new":
        return set(range(shared if shared is not None else len(names), len(names)))
    if isinstance(spec, str) and spec.startswith("top:"):
        k = int(spec[4:])
        if k > len(names):
            raise ConfigError(
                f"{where}.trainable={spec}: the backbone has only {len(names)} layer groups "
                f"({', '.join(names)}). Fix: {where}.trainable=top:{len(names)} or all."
            )
        return set(range(len(names) - k, len(names)))
    chosen: set[int] = set()
    for pattern in spec:
        hits = {i for i, n in enumerate(names) if fnmatch.fnmatchcase(n, pattern)}
        if not hits:
            raise ConfigError(
                f"{where}.trainable: pattern {pattern!r} matches no layer group; the groups are "
                f"{', '.join(names)}. Fix: use one of those names or a wildcard such as 'group*'."
            )
        chosen |= hits
    return chosen


def _trainable_per_epoch(
    stage: StageSpec, names: Sequence[str], where: str, shared: int | None
) -> list[frozenset[int]]:
    opened = _initial_trainable(stage, names, where, shared)
    closed_top_down = [i for i in reversed(range(len(names))) if i not in opened]
    cap = len(closed_top_down) if stage.unfreeze_max is None else min(stage.unfreeze_max, len(closed_top_down))
    per_epoch = []
    for epoch in range(stage.epochs):
        extra = 0 if stage.unfreeze_every is None else min(epoch // stage.unfreeze_every, cap)
        per_epoch.append(frozenset(opened | set(closed_top_down[:extra])))
    return per_epoch


def _group_trainable(g: GroupInfo, stage: StageSpec) -> int:
    """Elements of an open group that train under the stage's ``params`` and ``bn`` settings."""
    if stage.params == "adapter":
        return g.num_adapter_params
    if stage.params == "bias":
        return g.num_bias_params - (g.num_norm_bias_params if stage.bn == "frozen" else 0)
    return g.num_params - (g.num_norm_params if stage.bn == "frozen" else 0)


def _count_trainable(groups: Sequence[GroupInfo], open_set: frozenset[int], stage: StageSpec, head: int) -> int:
    return head + sum(_group_trainable(groups[i], stage) for i in open_set)


def _group_lr(stage: StageSpec, index: int, num_groups: int) -> float:
    depth = num_groups - 1 - index  # 0 for the top group
    decay = 1.0 if stage.lr_decay is None else stage.lr_decay**depth
    return stage.backbone_lr * decay


def compile_plan(strategy: StrategySpec, groups: Sequence[GroupInfo], head_params: int) -> Plan:
    """Compile the strategy into steps with trainable sets, parameter counts and per-epoch learning rates.

    Args:
        strategy: The validated strategy.
        groups: The backbone's layer groups, stem → top.
        head_params: Parameter elements of the head.

    Returns:
        The plan.

    Raises:
        ConfigError: If a stage names groups the backbone does not have.
    """
    groups = tuple(groups)
    names = [g.name for g in groups]
    shared = strategy.shared_groups
    if shared is not None and shared > len(groups):
        raise ConfigError(
            f"strategy.shared_groups={shared}: the backbone has only {len(groups)} layer groups "
            f"({', '.join(names)}). Fix: strategy.shared_groups=<0..{len(groups)}>."
        )
    total = head_params + sum(g.num_params for g in groups)
    steps: list[StepPlan] = []
    global_epoch = 0
    for s_index, stage in enumerate(strategy.stages):
        where = f"{strategy.where}.stages.{stage.name}"
        per_epoch = _trainable_per_epoch(stage, names, where, shared)
        start = 0
        step_index = 0
        while start < stage.epochs:
            end = start
            while end < stage.epochs and per_epoch[end] == per_epoch[start]:
                end += 1
            open_set = per_epoch[start]
            factors = tuple(lr_factor(stage, e) for e in range(start, end))
            lrs = {HEAD: tuple(stage.lr_head * f for f in factors)}
            for i in sorted(open_set, reverse=True):
                if not _group_trainable(groups[i], stage):
                    continue  # open, but nothing in it trains under params/bn (e.g. LoRA on the stem): no group
                base = _group_lr(stage, i, len(groups))
                lrs[param_group_name(names[i])] = tuple(base * f for f in factors)
            steps.append(
                StepPlan(
                    stage_index=s_index,
                    stage=stage,
                    step_index=step_index,
                    first_epoch=start,
                    global_first_epoch=global_epoch + start,
                    epochs=end - start,
                    trainable_groups=tuple(names[i] for i in sorted(open_set)),
                    trainable_params=_count_trainable(groups, open_set, stage, head_params),
                    total_params=total,
                    param_group_lrs=lrs,
                )
            )
            step_index += 1
            start = end
        global_epoch += stage.epochs
    return Plan(strategy=strategy, groups=groups, head_params=head_params, steps=tuple(steps))
