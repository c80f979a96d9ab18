"""One assembly: a :class:`~transferlab.run.spec.RunConfig` → the run's parts (backbone, data, module, plan).

``train``, ``plan``, ``validate`` and ``eval`` all build their parts here, with switches for what they can do
without: ``load_weights=False`` builds the architecture with random weights (validate, plan, eval — eval loads
the saved model afterwards), ``data="check"`` reads the data config and finds the sources without opening any
image, ``data="test"`` sets up the test split only. The checks that need several groups at once live here
too: a regularizer needs a single-head task, ``optimized_metric`` must be a metric the task records, a declared
``num_classes`` must match the data, the strategy's trainable patterns must match the backbone's layer groups.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from torch import nn

from transferlab.adapters.apply import apply_adapter
from transferlab.backbones.registry import CHECKPOINT, create_backbone
from transferlab.backbones.weight_files import checkpoint_backbone_name, read_weights_file
from transferlab.data.factory import build_data, check_data
from transferlab.data.multitask import MULTITASK, MultiTaskDataModule
from transferlab.errors import ConfigError
from transferlab.model.module import TransferModule
from transferlab.model.reinit import reinitialize_groups
from transferlab.model.tasks.base import Task
from transferlab.model.tasks.classification import ClassificationTask
from transferlab.model.tasks.loss_weighting import build_loss_weighting
from transferlab.model.tasks.losses import balanced_weights, label_counts, positive_weights, resolve_weights
from transferlab.model.tasks.multilabel import MultiLabelTask
from transferlab.model.tasks.multitask import MultiTaskHeads
from transferlab.model.tasks.options import TaskOptions
from transferlab.regularizers.factory import build_regularizer
from transferlab.regularizers.source import StartingPoint
from transferlab.run.auto_recipe import resolve as resolve_auto
from transferlab.run.spec import RunConfig
from transferlab.strategies.plan import Plan, compile_plan

log = logging.getLogger(__name__)

DataMode = Literal["fit", "test", "check"]


@dataclass
class RunParts:
    """What a run is made of.

    Attributes:
        config: The typed config the parts were built from.
        module: The staged module (backbone, task, regularizer).
        data: The data module (set up for ``fit``/``test``, or only checked).
        plan: The compiled strategy.
        start: Where the backbone's weights came from.
        monitor: The monitored validation metric (``optimized_metric``, or the task's own when that is null).
        monitor_mode: ``min`` for a loss, else ``max``.
    """

    config: RunConfig
    module: TransferModule
    data: Any
    plan: Plan
    start: StartingPoint
    monitor: str = "val/acc"
    monitor_mode: Literal["max", "min"] = "max"

    @property
    def backbone(self) -> nn.Module:
        """The module's backbone."""
        return self.module.backbone


def architecture_name(config: RunConfig) -> str:
    """The registry name of the architecture (for ``backbone=checkpoint``, the one the file records)."""
    name, weights = config.backbone.name, config.backbone.weights
    return checkpoint_backbone_name(read_weights_file(weights)) if name == CHECKPOINT else name


def build_backbone(config: RunConfig, load_weights: bool = True) -> tuple[nn.Module, StartingPoint]:
    """The backbone with the strategy's init, sharing and adapter applied, and where its weights came from.

    Args:
        config: The run config.
        load_weights: ``False``: the architecture with random weights (nothing is loaded, except that
            ``backbone=checkpoint`` reads its file to learn the architecture).

    Raises:
        ConfigError, WeightsError: For weights that cannot be had, or an adapter that cannot be injected.
    """
    strategy = config.strategy
    name, weights = config.backbone.name, config.backbone.weights
    if strategy.init == "random" or not load_weights:
        # strategy.init=random is the baseline of a transfer sweep: the same architecture, freshly initialised
        name, weights = architecture_name(config), None
    backbone = create_backbone(str(name), weights=weights)
    reinitialised: frozenset[str] = frozenset()
    if strategy.shared_groups is not None:  # K beyond the group count is rejected by compile_plan
        new = reinitialize_groups(backbone, strategy.shared_groups)
        groups = {g.name: g.param_names for g in backbone.layer_groups()}
        reinitialised = frozenset(n for g in new for n in groups[g])
        log.info("shared the first %d layer groups; re-initialised %s", strategy.shared_groups, ", ".join(new))
    backbone = apply_adapter(backbone, strategy.adapter)
    start = StartingPoint(config.backbone.name, config.backbone.weights, strategy.init, reinitialised)
    return backbone, start


def build_data_module(config: RunConfig, data_config: Any, mode: DataMode = "fit") -> Any:
    """The data module of the run, set up for ``mode`` (``check``: built and its sources found, not set up)."""
    if mode == "check":
        return check_data(config.data, data_config)
    data = build_data(config.data, data_config)
    data.setup(mode)
    return data


def build_task(data: Any, num_features: int, head_dropout: float, options: TaskOptions | None = None) -> Task:
    """The task component the data asks for: one head per task, a multi-label head, or a classifier.

    ``auto`` weights are counted on the training split when the data is set up (else they are ones: validate
    reads no data).

    Raises:
        ConfigError: For task options the data's kind of task cannot use (see :func:`check_task_options`).
    """
    options = options or TaskOptions()
    features = int(num_features)
    check_task_options(options, data)
    if isinstance(data, MultiTaskDataModule):
        weighting = build_loss_weighting(data.loss_weighting, data.loss_weights)
        return MultiTaskHeads(features, data.num_classes_per_task, weighting, data.class_names_per_task, head_dropout)
    names, classes = list(data.class_names), int(data.num_classes)
    counts = label_counts(data.train_targets(), classes) if getattr(data, "is_setup", False) else None
    weight = resolve_weights(
        options.class_weights, "class_weights", classes, names, None if counts is None else balanced_weights(counts)
    )
    if getattr(data, "multi_label", False):
        samples = len(data.train_set) if counts is not None else 0
        auto_pos = None if counts is None else positive_weights(counts, samples)
        pos_weight = resolve_weights(options.pos_weight, "pos_weight", classes, names, auto_pos)
        return MultiLabelTask(features, classes, names, head_dropout, options, weight=weight, pos_weight=pos_weight)
    return ClassificationTask(features, classes, names, head_dropout, options, weight=weight)


def check_task_options(options: TaskOptions, data: Any) -> None:
    """Refuse ``task.*`` settings the data's kind of task has no use for (they would silently do nothing).

    Raises:
        ConfigError: ``task.loss=bce`` or ``task.pos_weight`` with one label per image, ``task.loss=cross_entropy``
            with multi-label data, or any loss setting with multi-task data (its heads weigh their losses by
            ``data.loss_weighting``).
    """
    name = getattr(data, "name", type(data).__name__)
    if isinstance(data, MultiTaskDataModule):
        if options != TaskOptions():
            raise ConfigError(
                f"task.*: data={name} trains one head per task with plain cross-entropy, weighted across tasks by "
                "data.loss_weighting; the task group's loss settings do not apply to it. Fix: task=default."
            )
        return
    if getattr(data, "multi_label", False):
        if options.loss == "cross_entropy":
            raise ConfigError(
                f"task.loss=cross_entropy: data={name} has several labels per image, which softmax cross-entropy "
                "cannot learn. Fix: task.loss=auto (binary cross-entropy per label) or task.loss=focal."
            )
        return
    if options.loss == "bce":
        raise ConfigError(
            f"task.loss=bce: data={name} has one label per image. Fix: task.loss=auto (cross-entropy) or "
            "task.loss=focal; bce is for multi-label data."
        )
    if options.pos_weight is not None:
        raise ConfigError(
            f"task.pos_weight={options.pos_weight!r}: weighs the positive term of each label of multi-label data, "
            f"and data={name} has one label per image. Fix: task.pos_weight=null; use task.class_weights instead."
        )


def monitor_of(config: RunConfig, task: Task) -> tuple[str, Literal["max", "min"]]:
    """The monitored metric and its direction: ``optimized_metric``, or the task's own; a loss is minimised."""
    name = config.options.optimized_metric or task.monitor
    return name, "min" if "loss" in name.rsplit("/", 1)[-1] else "max"


def check_task(config: RunConfig, task: Task, data: Any) -> None:
    """The checks that need the task and the rest of the config (see the module docstring).

    Raises:
        ConfigError: For a regularizer with multi-task data, mixup/CutMix with multi-task data or a focal loss,
            an ``optimized_metric`` the task does not record, or a declared ``num_classes`` the data does not have.
    """
    regularizer = config.regularizer.get("name") or "none"
    if regularizer != "none" and config.data.get("name") == MULTITASK:
        raise ConfigError(
            f"regularizer={regularizer}: not supported with data=multitask (no single head). Fix: regularizer=none."
        )
    ridge = [stage.name for stage in config.strategy.stages if stage.head_init is not None]
    if ridge and not isinstance(task, ClassificationTask):
        key = f"{config.strategy.where}.stages.{ridge[0]}.head_init"
        raise ConfigError(
            f"{key}=ridge: the closed-form probe sets a single-label classifier's head, and this data's task is "
            f"{type(task).__name__}. Fix: {key}=null."
        )
    mixing = [stage.name for stage in config.strategy.stages if stage.mixes]
    if mixing:
        stage_key = f"{config.strategy.where}.stages.{mixing[0]}"
        key = f"{stage_key}.mixup/cutmix"
        if config.data.get("name") == MULTITASK:
            raise ConfigError(
                f"{key}: mixup/CutMix mixes the labels of one head; data=multitask has several. "
                f"Fix: {stage_key}.mixup=0 and {stage_key}.cutmix=0."
            )
        if config.task.loss == "focal" and not task.describe().get("multi_label"):
            raise ConfigError(
                f"{key}: mixed batches carry class probabilities, which task.loss=focal does not take. "
                f"Fix: task.loss=auto, or {stage_key}.mixup=0 and ...cutmix=0."
            )
    metric = config.options.optimized_metric
    if metric is not None and metric not in task.metric_names():
        names = ", ".join(n for n in task.metric_names() if n.startswith("val/"))
        raise ConfigError(
            f"optimized_metric={metric!r}: this run records no such metric; validation metrics: {names}. "
            f"Fix: optimized_metric={task.monitor} (or null for the task's own)."
        )
    declared = config.options.num_classes
    actual = task.describe()["num_classes"]
    if declared is not None and declared != actual:
        names = list(data.class_names)
        shown = f"{', '.join(map(str, names[:8]))}{', …' if len(names) > 8 else ''}"
        raise ConfigError(
            f"num_classes={declared}: the config declares {declared} classes but data '{config.data.get('name')}' "
            f"has {actual} ({shown}). Fix: num_classes={actual}, or change the data (e.g. data.classes=[…])."
        )


def assemble(
    config: RunConfig, *, load_weights: bool = True, data: DataMode = "fit", device: torch.device | None = None
) -> RunParts:
    """Build the run's parts (see the module docstring).

    Args:
        config: The typed config.
        load_weights: Load the configured weights (``False``: random init, and no regularizer is built).
        data: ``fit`` / ``test``: set up those splits; ``check``: build the data module without reading data.
        device: Where ``strategy=auto``'s quick probe runs (default: the CPU).

    Returns:
        The parts; the module's head is initialised, its step not yet set.

    Raises:
        ConfigError: On a bad combination of groups (see the module docstring).
        WeightsError, DataError: When weights or data cannot be had.
    """
    backbone, start = build_backbone(config, load_weights)
    datamodule = build_data_module(config, backbone.data_config, data)  # type: ignore[attr-defined]
    # strategy=auto: the recipe is chosen here, from the data just set up (run/auto_recipe.py)
    config = resolve_auto(config, backbone, datamodule, load_weights=load_weights, device=device or torch.device("cpu"))
    task = build_task(datamodule, backbone.num_features, config.strategy.head_dropout, config.task)  # type: ignore[arg-type]
    check_task(config, task, datamodule)
    monitor, mode = monitor_of(config, task)
    regularizer = build_regularizer(config.regularizer, backbone, start) if load_weights else None
    hparams = {"backbone_name": backbone.name, "config": dict(config.resolved)}
    module = TransferModule(backbone, task, regularizer, hparams)
    plan = compile_plan(config.strategy, module.groups.infos(), sum(p.numel() for p in module.head_parameters()))
    return RunParts(config, module, datamodule, plan, start, monitor, mode)


def for_saved_model(config: RunConfig, backbone_name: str, data_cfg: dict[str, Any] | None = None) -> RunConfig:
    """The config that rebuilds a saved model's architecture (then loaded with its weights).

    That is its registry name, no adapter (exports are merged), no re-initialisation, and optionally another
    data config.
    """
    strategy = replace(config.strategy, adapter=None, shared_groups=None, init="pretrained")
    backbone = replace(config.backbone, name=backbone_name, weights=None)
    return replace(config, strategy=strategy, backbone=backbone, data=dict(data_cfg or config.data))
