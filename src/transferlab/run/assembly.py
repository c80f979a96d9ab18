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
from transferlab.model.tasks.multitask import MultiTaskHeads
from transferlab.regularizers.factory import build_regularizer
from transferlab.regularizers.source import StartingPoint
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
    """

    config: RunConfig
    module: TransferModule
    data: Any
    plan: Plan
    start: StartingPoint

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


def build_task(data: Any, num_features: int, head_dropout: float) -> Task:
    """The task component the data asks for: one head per task for multi-task data, else a classifier."""
    features = int(num_features)
    if isinstance(data, MultiTaskDataModule):
        weighting = build_loss_weighting(data.loss_weighting, data.loss_weights)
        return MultiTaskHeads(features, data.num_classes_per_task, weighting, data.class_names_per_task, head_dropout)
    return ClassificationTask(features, data.num_classes, list(data.class_names), head_dropout)


def check_task(config: RunConfig, task: Task, data: Any) -> None:
    """The checks that need the task and the rest of the config (see the module docstring).

    Raises:
        ConfigError: For a regularizer with multi-task data, an ``optimized_metric`` the task does not record,
            or a declared ``num_classes`` the data does not have.
    """
    regularizer = config.regularizer.get("name") or "none"
    if regularizer != "none" and config.data.get("name") == MULTITASK:
        raise ConfigError(
            f"regularizer={regularizer}: not supported with data=multitask (no single head). Fix: regularizer=none."
        )
    metric = config.options.optimized_metric
    if metric not in task.metric_names():
        names = ", ".join(n for n in task.metric_names() if n.startswith("val/"))
        raise ConfigError(
            f"optimized_metric={metric!r}: this run records no such metric; validation metrics: {names}. "
            "Fix: optimized_metric=val/acc."
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


def assemble(config: RunConfig, *, load_weights: bool = True, data: DataMode = "fit") -> RunParts:
    """Build the run's parts (see the module docstring).

    Args:
        config: The typed config.
        load_weights: Load the configured weights (``False``: random init, and no regularizer is built).
        data: ``fit`` / ``test``: set up those splits; ``check``: build the data module without reading data.

    Returns:
        The parts; the module's head is initialised, its step not yet set.

    Raises:
        ConfigError: On a bad combination of groups (see the module docstring).
        WeightsError, DataError: When weights or data cannot be had.
    """
    backbone, start = build_backbone(config, load_weights)
    datamodule = build_data_module(config, backbone.data_config, data)  # type: ignore[attr-defined]
    task = build_task(datamodule, backbone.num_features, config.strategy.head_dropout)  # type: ignore[arg-type]
    check_task(config, task, datamodule)
    regularizer = build_regularizer(config.regularizer, backbone, start) if load_weights else None
    hparams = {"backbone_name": backbone.name, "config": dict(config.resolved)}
    module = TransferModule(backbone, task, regularizer, hparams)
    plan = compile_plan(config.strategy, module.groups.infos(), sum(p.numel() for p in module.head_parameters()))
    return RunParts(config, module, datamodule, plan, start)


def for_saved_model(config: RunConfig, backbone_name: str, data_cfg: dict[str, Any] | None = None) -> RunConfig:
    """The config that rebuilds a saved model's architecture (then loaded with its weights).

    That is its registry name, no adapter (exports are merged), no re-initialisation, and optionally another
    data config.
    """
    strategy = replace(config.strategy, adapter=None, shared_groups=None, init="pretrained")
    backbone = replace(config.backbone, name=backbone_name, weights=None)
    return replace(config, strategy=strategy, backbone=backbone, data=dict(data_cfg or config.data))
