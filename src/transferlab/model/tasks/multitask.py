"""Multi-task hard parameter sharing: one linear head per task on the shared trunk, losses combined by a weighting.

The trunk is the staged module's single ``backbone``; every head reads its features, so every task's gradient
lands on the same tensors (no copies). Plan steps, freeze modes, history and best-weights tracking are the
module's and the run's; this component holds the heads, the weighting and the per-task metrics. ``val/acc``
and ``test/acc`` are the mean over tasks, so checkpointing, stage rows and sweeps work unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from transferlab.model.tasks.base import EpochValues, FeaturesOf, Reduce, Split, StepOutput, Task, named_splits
from transferlab.model.tasks.loss_weighting import LossWeighting
from transferlab.strategies.plan import HEAD

LOSS_WEIGHTS = "loss_weights"
"""Optimizer/TensorBoard name of the learned loss-weighting parameters."""

_SPLITS = ("train", "val", "test")


def _task_metrics(num_classes: int) -> nn.ModuleDict:
    # torchmetrics states are not persistent, so none of these enter state_dict or the export.
    out = {f"{s}_loss": MeanMetric(nan_strategy="disable") for s in _SPLITS}
    # validate_args off: its label check (torch.unique) would sync with the device every step
    acc = {"num_classes": num_classes, "average": "micro", "validate_args": False}
    out |= {f"{s}_acc": MulticlassAccuracy(**acc) for s in _SPLITS}
    return nn.ModuleDict(out)


class MultiTaskHeads(Task):
    """Shared features → dropout → ``heads[task]``; trained on ``{task: (x, y)}`` batches.

    Validation and test batches come one loader per task, in task order (``dataloader_idx`` names the task).

    Args:
        num_features: Width of the trunk's features.
        num_classes: Task name → number of classes of its head.
        weighting: Combines the task losses (its parameters, if any, train at the head's rate, without decay).
        class_names: Task name → its class names (``0..C-1`` when not given).
        head_dropout: Dropout probability before every head.

    Raises:
        ValueError: Without tasks, or when the weighting's tasks differ from the heads'.

    Example:
        >>> heads = MultiTaskHeads(16, {"low": 5, "high": 5}, LossWeighting({"low": 1.0, "high": 1.0}))
        >>> heads(torch.zeros(8, 16), "high").shape
        torch.Size([8, 5])
    """

    def __init__(
        self,
        num_features: int,
        num_classes: Mapping[str, int],
        weighting: LossWeighting,
        class_names: Mapping[str, Sequence[str]] | None = None,
        head_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not num_classes:
            raise ValueError("MultiTaskHeads needs at least one task")
        if set(weighting.tasks) != set(num_classes):
            raise ValueError(f"weighting tasks {weighting.tasks} differ from head tasks {list(num_classes)}")
        self.task_names = list(num_classes)
        names = dict(class_names or {})
        self.class_names = {t: [str(c) for c in names.get(t, range(n))] for t, n in num_classes.items()}
        self.dropout = nn.Dropout(head_dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(int(num_features), n) for t, n in num_classes.items()})
        self.loss_weighting = weighting
        self.metrics = nn.ModuleDict({t: _task_metrics(n) for t, n in num_classes.items()})
        self.train_total = MeanMetric(nan_strategy="disable")

    def forward(self, features: torch.Tensor, task: str | None = None) -> torch.Tensor:
        """Logits of ``task`` (the first task when not given), shape ``(B, classes of task)``."""
        return self.heads[task or self.task_names[0]](self.dropout(features))

    # ---- parameters -----------------------------------------------------------------------------------
    def head_groups(self) -> dict[str, list[nn.Parameter]]:
        """Param groups ``head.<task>``."""
        return {f"{HEAD}.{t}": list(head.parameters()) for t, head in self.heads.items()}

    def extra_param_groups(self, head_lr: float) -> list[dict[str, Any]]:
        """The learned loss weights, at the head's rate and without weight decay."""
        learned = list(self.loss_weighting.parameters())
        if not learned:
            return []
        # Decay would pull every log-variance to 0 (weight 1), fighting what the weighting learns.
        return [
            {"params": learned, "lr": head_lr, "weight_decay": 0.0, "name": LOSS_WEIGHTS, "base_name": LOSS_WEIGHTS}
        ]

    # ---- loops --------------------------------------------------------------------------------------------
    def training_step(
        self, batch: Mapping[str, tuple[torch.Tensor, torch.Tensor]], features_of: FeaturesOf
    ) -> StepOutput:
        """Weighted sum of the tasks' cross-entropies; one trunk forward per task batch."""
        losses: dict[str, torch.Tensor] = {}
        for task, (x, y) in batch.items():
            # A forward per task (not one concatenated batch): tasks may differ in image size.
            logits = self(features_of(x), task)
            losses[task] = F.cross_entropy(logits, y)
            m = self.metrics[task]
            m["train_loss"].update(losses[task].detach())
            m["train_acc"].update(logits.detach(), y)
        loss = self.loss_weighting(losses)
        self.train_total.update(loss.detach())
        return StepOutput(loss, logs={f"train/{t}/loss": v.detach() for t, v in losses.items()})

    def eval_step(
        self, split: Split, batch: tuple[torch.Tensor, torch.Tensor], features_of: FeaturesOf, dataloader_idx: int = 0
    ) -> None:
        """Accumulate the metrics of the task of loader ``dataloader_idx``."""
        task = self.task_names[dataloader_idx]
        x, y = batch
        logits = self(features_of(x), task)
        # per sample: MeanMetric(nan_strategy="disable") ignores update(weight=) (torchmetrics 1.9)
        self.metrics[task][f"{split}_loss"].update(F.cross_entropy(logits, y, reduction="none"))
        self.metrics[task][f"{split}_acc"].update(logits, y)

    def reset(self, split: Split) -> None:
        """Forget the split's accumulated values."""
        for task in self.task_names:
            for kind in ("loss", "acc"):
                self.metrics[task][f"{split}_{kind}"].reset()
        if split == "train":
            self.train_total.reset()

    def _compute(self, split: Split) -> dict[str, torch.Tensor]:
        """``<split>/<task>/{loss,acc}`` and their means over tasks as ``<split>/{loss,acc}``; resets."""
        out: dict[str, torch.Tensor] = {}
        for task in self.task_names:
            for kind in ("loss", "acc"):
                metric = self.metrics[task][f"{split}_{kind}"]
                out[f"{split}/{task}/{kind}"] = metric.compute()
                metric.reset()
        for kind in ("loss", "acc"):
            out[f"{split}/{kind}"] = torch.stack([out[f"{split}/{t}/{kind}"] for t in self.task_names]).mean()
        return out

    def epoch_end(self, split: Split, reduce: Reduce) -> EpochValues:
        """Per-task metrics and their means; training adds the weighted total and the effective loss weights.

        Epoch training losses get an ``_epoch`` suffix in TensorBoard because the same names are logged per step.
        """
        values = self._compute(split)
        if split != "train":
            recorded = {k: float(v) for k, v in values.items()}
            if split == "test":  # the means and the per-task values (as metrics.json 'final' shows them)
                recorded = {"test/acc": recorded["test/acc"], "test/loss": recorded["test/loss"]} | recorded
            return EpochValues(dict(values), recorded)
        del values["train/loss"]  # the unweighted mean; the weighted total below is what was optimised
        values["train/loss"] = self.train_total.compute()
        self.train_total.reset()
        weights = {f"loss_weight/{t}": w for t, w in self.loss_weighting.effective_weights().items()}
        logged: dict[str, Any] = {(k + "_epoch" if k.endswith("loss") else k): v for k, v in values.items()}
        return EpochValues(logged | weights, {k: float(v) for k, v in values.items()} | weights)

    # ---- description --------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Outputs over all heads, flat ``<task>/<class>`` names and the class names of each task."""
        flat = [f"{t}/{c}" for t, names in self.class_names.items() for c in names]
        return {
            "num_classes": len(flat),
            "class_names": flat,
            "tasks": {t: list(n) for t, n in self.class_names.items()},
        }

    def metric_names(self) -> list[str]:
        """The means and every task's ``{split}/<task>/{loss,acc}``."""
        per_task = {f"{t}/{kind}": 0 for t in self.task_names for kind in ("loss", "acc")}
        return named_splits({"loss": 0, "acc": 0} | per_task) + [f"loss_weight/{t}" for t in self.task_names]

    def cache_blocker(self) -> str | None:
        """Multi-task batches hold one image batch per task: they are never cached."""
        return "multi-task data (one batch per task)"
