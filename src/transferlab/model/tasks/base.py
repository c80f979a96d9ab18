"""The task component of a staged module: its heads, its loss and its metrics.

:class:`~transferlab.model.module.TransferModule` knows the plan step, the freeze modes, the backbone and the
optimizer's param groups; everything that depends on *what* is predicted lives in a :class:`Task`: the heads
that read the backbone's features, the loss of a training batch, the metrics of an epoch and what an export
needs to describe its outputs. A new kind of task (multi-label, regression, …) is one new subclass, not a
subclass of the module.

A task is an ``nn.Module`` so that it can be built and tested on its own. The staged module registers the
task's children (``head``, ``heads``, ``loss_weighting``, metric states) directly under its own name, so
``state_dict`` keys stay ``head.*`` / ``heads.<task>.*`` — the keys every export, checkpoint and reload uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

Split = Literal["train", "val", "test"]
#: Maps a batch of inputs to backbone features (images through the backbone, cached features unchanged).
FeaturesOf = Callable[[torch.Tensor], torch.Tensor]
#: Sums a 1-D tensor over the processes of a distributed run (identity on one process).
Reduce = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class StepOutput:
    """What a task returns for one training batch.

    Attributes:
        loss: The scalar to minimise (before any regularizer penalty).
        logs: Per-step scalars to log besides ``train/loss`` (e.g. ``train/<task>/loss``).
        inputs: The batch's inputs, for regularizers that read them (``None`` where there is no single input).
        features: The backbone features of ``inputs`` (``None`` likewise).
    """

    loss: torch.Tensor
    logs: dict[str, torch.Tensor] = field(default_factory=dict)
    inputs: torch.Tensor | None = None
    features: torch.Tensor | None = None


@dataclass
class EpochValues:
    """A split's metrics at the end of an epoch.

    Attributes:
        logged: Name → value as written to the loggers (epoch losses carry an ``_epoch`` suffix where the same
            name is also logged per step).
        recorded: Name → float as recorded in ``metrics.json`` (per-epoch history, stage rows, final).
        details: Plain data that is not a scalar (per-class accuracy, confusion counts), test only.
        figures: TensorBoard image tag → a function of the stage name that draws the matplotlib figure (called
            only where a logger shows images), test only.
    """

    logged: dict[str, torch.Tensor]
    recorded: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Callable[[str], Any]] = field(default_factory=dict)


class Task(nn.Module):
    """Base class of task components (see the module docstring).

    Attributes:
        monitor: The validation metric that picks the best epoch (``carry: best``, best checkpoints).
        monitor_mode: ``max`` when higher is better.
        sanity_checking: Set by the module while Lightning's sanity check runs a few validation batches before
            a fit: their metrics are logged, never recorded, and a task must not learn from them (the
            multi-label task tunes its thresholds on real validation epochs only).
    """

    monitor: str = "val/acc"
    monitor_mode: Literal["max", "min"] = "max"
    sanity_checking: bool = False
    #: The current stage's label smoothing of the training loss (``None``: the ``task`` group's).
    stage_smoothing: float | None = None

    # ---- parameters ---------------------------------------------------------------------------------
    def head_groups(self) -> dict[str, list[nn.Parameter]]:
        """Optimizer param-group name → parameters that learn at the head's rate in every step."""
        raise NotImplementedError

    def extra_param_groups(self, head_lr: float) -> list[dict[str, Any]]:
        """Further optimizer param groups (e.g. learned loss weights), given the head's base rate."""
        return []

    def head_parameters(self) -> list[nn.Parameter]:
        """Every parameter of the task: all of them train in every step."""
        return list(self.parameters())

    # ---- loops --------------------------------------------------------------------------------------
    def training_step(self, batch: Any, features_of: FeaturesOf) -> StepOutput:
        """Loss (and per-step logs) of one training batch; accumulate the epoch's training metrics."""
        raise NotImplementedError

    def eval_step(self, split: Split, batch: Any, features_of: FeaturesOf, dataloader_idx: int = 0) -> None:
        """Accumulate the metrics of one validation or test batch."""
        raise NotImplementedError

    def epoch_end(self, split: Split, reduce: Reduce) -> EpochValues:
        """The split's metrics over the epoch (synced over processes); the accumulators are reset."""
        raise NotImplementedError

    def reset(self, split: Split) -> None:
        """Forget what the split accumulated (an epoch cut short must not leak into the next)."""

    # ---- description ----------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Plain data saved with checkpoints and exports: ``num_classes``, ``class_names`` (and per-task names)."""
        raise NotImplementedError

    def export_metadata(self) -> dict[str, Any]:
        """Plain data for the export's metadata beyond :meth:`describe`, known only after training (thresholds)."""
        return {}

    def metric_names(self) -> list[str]:
        """Every metric name the task records (``val/acc``, …): what ``optimized_metric`` may name."""
        raise NotImplementedError

    def cache_blocker(self) -> str | None:
        """Why batches of this task cannot be cached backbone features (``None``: they can)."""
        return None

    def soft_targets(self, target: torch.Tensor) -> torch.Tensor:
        """A batch's targets as float rows ``(B, K)`` that mixup/CutMix can mix (one-hot classes, 0/1 labels).

        Raises:
            NotImplementedError: For a task whose batches cannot be mixed (the assembly refuses it first).
        """
        raise NotImplementedError(f"{type(self).__name__} batches cannot be mixed (mixup/cutmix)")


def named_splits(names: Mapping[str, Any]) -> list[str]:
    """``{train,val,test}/<name>`` for every name (helper for :meth:`Task.metric_names`)."""
    return [f"{split}/{name}" for split in ("train", "val", "test") for name in names]
