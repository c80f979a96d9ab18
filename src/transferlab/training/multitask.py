"""Multi-task hard parameter sharing: one trunk, one linear head per task, losses combined by a weighting.

The trunk is the single ``backbone`` of :class:`~transferlab.training.module.TransferModule`; every head reads
its features, so every task's gradient lands on the same tensors (no copies). Plan steps, freeze modes,
history and best-weights tracking are the base class's; only the loops, the heads and the optimizer's
param groups differ. ``val/acc`` and ``test/acc`` are the mean over tasks, so checkpointing, stage rows and
sweeps work unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from transferlab.backbones.base import Backbone
from transferlab.data.multitask import MultiTaskDataModule
from transferlab.strategies import compile_plan
from transferlab.strategies.plan import HEAD, Plan
from transferlab.strategies.schedule import lr_factor
from transferlab.strategies.spec import StrategySpec
from transferlab.training.loss_weighting import LossWeighting, build_loss_weighting
from transferlab.training.module import TransferModule
from transferlab.training.optim import build_optimizer, build_param_groups, build_scheduler

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


class MultiTaskModule(TransferModule):
    """Shared backbone → dropout → ``heads[task]``; trained on ``{task: (x, y)}`` batches.

    Args:
        backbone: The shared trunk (Backbone contract).
        num_classes: Task name → number of classes of its head.
        weighting: Combines the task losses (its parameters, if any, train at the head's rate).
        head_dropout: Dropout probability before every head.
        hparams: Plain-data hyperparameters (as for :class:`TransferModule`).

    Example:
        >>> weighting = LossWeighting({"low": 1.0, "high": 1.0})
        >>> module = MultiTaskModule(backbone, {"low": 5, "high": 5}, weighting)  # doctest: +SKIP
        >>> module(x, "low").shape  # doctest: +SKIP
        torch.Size([8, 5])
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: Mapping[str, int],
        weighting: LossWeighting,
        head_dropout: float = 0.0,
        hparams: dict[str, Any] | None = None,
    ) -> None:
        if not num_classes:
            raise ValueError("MultiTaskModule needs at least one task")
        if set(weighting.tasks) != set(num_classes):
            raise ValueError(f"weighting tasks {weighting.tasks} differ from head tasks {list(num_classes)}")
        super().__init__(backbone, sum(num_classes.values()), head_dropout, hparams=hparams)
        # The base class's single head and metrics would be dead weight here (and a 'head' that is not the
        # model's head is a trap); the heads below replace them.
        for name in ("head", "val_loss", "test_loss", "val_acc", "test_acc"):
            delattr(self, name)
        self.task_names = list(num_classes)
        features = int(backbone.num_features)
        self.heads = nn.ModuleDict({t: nn.Linear(features, n) for t, n in num_classes.items()})
        self.loss_weighting = weighting
        self.metrics = nn.ModuleDict({t: _task_metrics(n) for t, n in num_classes.items()})
        self.train_total = MeanMetric(nan_strategy="disable")

    # ---- parameters --------------------------------------------------------------------------------
    def head_parameters(self) -> list[nn.Parameter]:
        """Every head's parameters and the loss weighting's: they train in every step."""
        return list(self.heads.parameters()) + list(self.loss_weighting.parameters())

    def configure_optimizers(self) -> dict[str, Any]:
        """Param groups ``head.<task>``, ``backbone.<group>`` and ``loss_weights`` (no weight decay)."""
        if self.step_plan is None:
            raise RuntimeError("MultiTaskModule.set_step() must be called before fitting")
        step = self.step_plan
        backbone = self.groups.trainable_params(step.trainable_groups, step.stage.bn, step.stage.params)
        heads = {f"{HEAD}.{t}": list(head.parameters()) for t, head in self.heads.items()}
        groups = build_param_groups(step, [], backbone, heads=heads)
        learned = list(self.loss_weighting.parameters())
        if learned:
            # Decay would pull every log-variance to 0 (weight 1), fighting what the weighting learns.
            lr = step.param_group_lrs[HEAD][0] / lr_factor(step.stage, step.first_epoch)  # as build_param_groups
            groups.append(
                {"params": learned, "lr": lr, "weight_decay": 0.0, "name": LOSS_WEIGHTS, "base_name": LOSS_WEIGHTS}
            )
        optimizer = build_optimizer(step, groups)
        scheduler = build_scheduler(step, optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    # ---- model ---------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, task: str | None = None) -> torch.Tensor:  # type: ignore[override]
        """Logits of ``task`` (the first task when not given), shape ``(B, classes of task)``."""
        return self.heads[task or self.task_names[0]](self.dropout(self.backbone.forward_features(x)))

    # ---- loops -----------------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, tuple[torch.Tensor, torch.Tensor]], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        """Weighted sum of the tasks' cross-entropies; one trunk forward per task batch."""
        losses: dict[str, torch.Tensor] = {}
        for task, (x, y) in batch.items():
            # A forward per task (not one concatenated batch): tasks may differ in image size.
            logits = self(x, task)
            losses[task] = F.cross_entropy(logits, y)
            m = self.metrics[task]
            m["train_loss"].update(losses[task].detach())
            m["train_acc"].update(logits.detach(), y)
        loss = self.loss_weighting(losses)
        self.finite_loss.check(loss, self._where(batch_idx))
        self.train_total.update(loss.detach())
        if self.step_is_logged():  # per-step self.log only on the steps Lightning writes (see the base class)
            for task, task_loss in losses.items():
                self.log(f"train/{task}/loss", task_loss.detach(), on_step=True, on_epoch=False)
            self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _eval_step(self, split: str, batch: tuple[torch.Tensor, torch.Tensor], dataloader_idx: int) -> None:
        task = self.task_names[dataloader_idx]
        x, y = batch
        logits = self(x, task)
        self.metrics[task][f"{split}_loss"].update(F.cross_entropy(logits, y), weight=y.numel())
        self.metrics[task][f"{split}_acc"].update(logits, y)

    def validation_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:  # type: ignore[override]
        """Accumulate the validation metrics of the task of loader ``dataloader_idx``."""
        self._eval_step("val", batch, dataloader_idx)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:  # type: ignore[override]
        """Accumulate the test metrics of the task of loader ``dataloader_idx``."""
        self._eval_step("test", batch, dataloader_idx)

    def _compute(self, split: str) -> dict[str, torch.Tensor]:
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

    def on_train_epoch_end(self) -> None:
        """Log per-task training metrics, the weighted total and the effective loss weights.

        Epoch losses get a ``_epoch`` suffix in TensorBoard, as in the base class, because the same names
        are logged per step.
        """
        values = self._compute("train")
        del values["train/loss"]  # the unweighted mean; the weighted total below is what was optimised
        values["train/loss"] = self.train_total.compute()
        self.train_total.reset()
        weights = {f"loss_weight/{t}": w for t, w in self.loss_weighting.effective_weights().items()}
        self.log_dict({(k + "_epoch" if k.endswith("loss") else k): v for k, v in values.items()})
        self.log_dict(weights)
        if self.history:
            self.history[-1].update({k: float(v) for k, v in values.items()} | weights)

    def on_validation_epoch_end(self) -> None:
        """Log per-task validation metrics; keep the best weights by the mean accuracy ``val/acc``."""
        values = self._compute("val")
        self.log_dict(values)
        if self.trainer.sanity_checking:
            return
        score = float(values["val/acc"])
        if self.history:
            self.history[-1].update({k: float(v) for k, v in values.items()})
        if score > self.best_score:
            self.best_score = score
            self.best_state = {k: v.detach().clone().cpu() for k, v in self.state_dict().items()}

    def on_test_epoch_end(self) -> None:
        """Log per-task test metrics and their means (``test/acc``, ``test/loss``)."""
        values = self._compute("test")
        self.log_dict(values)
        self.last_test = {"test/acc": float(values["test/acc"]), "test/loss": float(values["test/loss"])}
        self.last_test |= {k: float(v) for k, v in values.items() if k.count("/") == 2}


def build_multitask(
    data_cfg: Mapping[str, Any], backbone: Backbone, strategy: StrategySpec, hparams: dict[str, Any]
) -> tuple[MultiTaskModule, MultiTaskDataModule, Plan]:
    """The multi-task counterpart of the engine's ``build_module`` tail: data, module and plan.

    Args:
        data_cfg: The plain multi-task ``data`` config.
        backbone: The shared trunk (strategy init, sharing and adapters already applied).
        strategy: The parsed strategy.
        hparams: Plain-data hyperparameters (``backbone_name``, ``config``); tasks are added here.

    Returns:
        The module, the data module (set up for fitting) and the plan, whose head count includes every
        head and the loss weighting's parameters (they all train in every step).
    """
    data = MultiTaskDataModule.from_config(data_cfg, backbone.data_config)
    data.setup("fit")
    hparams = dict(hparams, class_names=data.class_names, tasks=data.class_names_per_task)
    weighting = build_loss_weighting(data.loss_weighting, data.loss_weights)
    module = MultiTaskModule(backbone, data.num_classes_per_task, weighting, strategy.head_dropout, hparams=hparams)
    head_params = sum(p.numel() for p in module.head_parameters())
    plan = compile_plan(strategy, module.groups.infos(), head_params)
    return module, data, plan
