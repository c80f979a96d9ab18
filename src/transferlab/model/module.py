"""TransferModule: a backbone, a task component (heads, loss, metrics), and the plan step it is training."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from torch import nn

from transferlab.data.transforms import normalization, normalize_images
from transferlab.model.divergence import FiniteLossGuard
from transferlab.model.freeze import GroupIndex, apply_module_modes
from transferlab.model.mixing import BatchMixer
from transferlab.model.optim import build_optimizer, build_param_groups, build_scheduler
from transferlab.model.tasks.base import Split, Task
from transferlab.model.tasks.classification import ClassificationTask
from transferlab.model.tasks.loss_weighting import LossWeighting
from transferlab.model.tasks.multitask import MultiTaskHeads
from transferlab.strategies.plan import HEAD, StepPlan
from transferlab.strategies.schedule import lr_factor

#: What a step's batches hold: images (through the backbone) or cached backbone features (straight to the heads).
Inputs = Literal["images", "features"]


class TransferModule(pl.LightningModule):
    """Backbone features → the task's heads, trained one plan step at a time.

    The engine calls :meth:`set_step` before each ``Trainer.fit``; the step decides which layer groups train,
    the BatchNorm mode and the optimizer's named param groups. Frozen parts stay in eval mode. What is
    predicted (heads, loss, metrics) is the ``task``'s; what the run records is the run's (``run/recorder.py``):
    this module only keeps the latest epoch's metrics per split, in :attr:`epoch_metrics`.

    Args:
        backbone: A module implementing the Backbone contract.
        task: The task component; its children are registered on this module under their own names, so the
            ``state_dict`` keys are ``backbone.*`` and ``head.*`` (or ``heads.<task>.*``).
        regularizer: A penalty module ``forward(module, x, features) -> scalar`` (``regularizer=l2sp|lwf``).
        hparams: Plain-data hyperparameters stored in checkpoints (``backbone_name``, ``config``); the task's
            description (``num_classes``, ``class_names``) is added. Never modules or objects, so checkpoints
            load with ``weights_only=True``.

    Example:
        >>> module = classifier(create_backbone("tv:resnet18"), num_classes=10)  # doctest: +SKIP
        >>> module.set_step(plan.steps[0])  # doctest: +SKIP
    """

    def __init__(
        self,
        backbone: nn.Module,
        task: Task,
        regularizer: nn.Module | None = None,
        hparams: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(dict(hparams or {}) | task.describe(), logger=False)
        self.backbone = backbone
        # The task stays outside the module tree (its children join it below): one copy of every tensor,
        # at the keys exports and checkpoints have always used.
        object.__setattr__(self, "task", task)
        for name, child in task.named_children():
            self.add_module(name, child)
        self.regularizer = regularizer
        self.groups = GroupIndex(backbone)
        self.step_plan: StepPlan | None = None
        self.inputs: Inputs = "images"
        self.channels_last = False
        self.finite_loss = FiniteLossGuard()
        self.mixer: BatchMixer | None = None  # the step's mixup/CutMix (images only)
        self._statistics: tuple[torch.Tensor, torch.Tensor] | None = None  # mean/std for uint8 batches
        #: The latest epoch's recorded metrics per split (``train``, ``val``, ``test``), and the test's details.
        self.epoch_metrics: dict[str, dict[str, float]] = {}
        self.test_details: dict[str, Any] = {}

    # ---- plan steps -------------------------------------------------------------------------------
    def set_step(self, step: StepPlan, inputs: Inputs = "images") -> None:
        """Make ``step`` current: ``requires_grad`` per layer group (the heads always train) and the input kind.

        Args:
            step: The plan step to train next.
            inputs: ``features`` when the step's loaders serve cached backbone features (feature cache).
        """
        self.step_plan = step
        self.use_inputs(inputs)
        self.mixer = BatchMixer(step.stage) if step.stage.mixes else None
        self.task.stage_smoothing = step.stage.label_smoothing
        self.groups.set_trainable(step.trainable_groups, step.stage.bn, step.stage.params)
        for p in self.head_parameters():
            p.requires_grad_(True)

    def use_inputs(self, inputs: Inputs) -> None:
        """Say what the next batches hold: ``images`` (through the backbone) or cached ``features``."""
        if inputs not in ("images", "features"):
            raise ValueError(f"inputs={inputs!r}: expected 'images' or 'features'")
        self.inputs = inputs

    def use_channels_last(self, enabled: bool) -> None:
        """Hold the weights and batches of images channels-last (NHWC), or not (``run/speed.py`` decides)."""
        if enabled:
            self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.channels_last = enabled

    def refresh_groups(self) -> None:
        """Rebuild the layer-group index after the backbone's parameters changed (adapters merged)."""
        self.groups = GroupIndex(self.backbone)

    def train(self, mode: bool = True) -> TransferModule:
        """Switch modes; in training mode, frozen parts of the backbone stay in eval mode."""
        super().train(mode)
        if mode and self.step_plan is not None:
            apply_module_modes(self.backbone, self.step_plan.stage.bn)
        return self

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters outside the backbone, which train in every step (the task's)."""
        return self.task.head_parameters()

    def num_trainable(self) -> int:
        """Trainable parameter elements right now (measured, not planned)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ---- model --------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *args: Any) -> torch.Tensor:
        """The task's output for a batch (``x`` are images, or features when the step serves cached features)."""
        return self.task(self.features(x), *args)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features of a batch; a batch of cached features passes through unchanged."""
        return x if self.inputs == "features" else self.backbone.forward_features(x)

    def configure_optimizers(self) -> dict[str, Any]:
        """Fresh optimizer for the current step; the per-epoch schedule continues the stage's shape."""
        if self.step_plan is None:
            raise RuntimeError("TransferModule.set_step() must be called before fitting")
        step = self.step_plan
        backbone = self.groups.trainable_params(step.trainable_groups, step.stage.bn, step.stage.params)
        groups = build_param_groups(step, [], backbone, heads=self.task.head_groups())
        head_lr = step.param_group_lrs[HEAD][0] / lr_factor(step.stage, step.first_epoch)  # as build_param_groups
        groups += self.task.extra_param_groups(head_lr)
        optimizer = build_optimizer(step, groups)
        scheduler = build_scheduler(step, optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    # ---- loops --------------------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Normalise uint8 image batches on the device; make them channels-last when the weights are.

        The decoded-image cache serves uint8 batches (a quarter of the bytes through the loader and the host →
        device copy): they are normalised here with the backbone's statistics, bit-identical to the live
        pipeline (:func:`~transferlab.data.transforms.normalize_images`).
        """
        if not isinstance(batch, (tuple, list)) or getattr(batch[0], "ndim", 0) != 4:
            return batch
        x = batch[0]
        if x.dtype == torch.uint8:
            x = self.normalize_images(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return batch if x is batch[0] else (x, *batch[1:])

    def normalize_images(self, x: torch.Tensor) -> torch.Tensor:
        """A uint8 batch → the backbone's normalised float input (see :meth:`on_after_batch_transfer`)."""
        if self._statistics is None:
            self._statistics = normalization(self.backbone.data_config)  # type: ignore[arg-type]
        return normalize_images(x, *self._statistics)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """The task's loss (plus the regularizer's penalty) on one batch (mixed first, when the stage mixes)."""
        if self.mixer is not None and self.inputs == "images":
            x, y = batch
            batch = self.mixer(x, self.task.soft_targets(y))
        out = self.task.training_step(batch, self.features)
        loss = out.loss
        logged = self.step_is_logged()
        if self.regularizer is not None:
            if out.inputs is None or out.features is None:
                raise RuntimeError("a regularizer needs a task with one input batch (the assembly refuses others)")
            penalty = self.regularizer(self, out.inputs, out.features)
            if logged:
                self.log("train/penalty", penalty.detach(), on_step=True, on_epoch=False)
            loss = loss + penalty
        self.finite_loss.check(loss, self._where(batch_idx))
        if logged:
            for name, value in out.logs.items():
                self.log(name, value, on_step=True, on_epoch=False)
            self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def step_is_logged(self) -> bool:
        """Whether Lightning writes this training step's values (every ``trainer.log_every_n_steps`` steps).

        Per-step ``self.log`` calls are made only then: each costs ~0.3 ms on the host (Lightning moves its
        result record to the value's device on every call), more than a whole step of a head on cached
        features, and values logged on the other steps are never written. The progress bar shows the last
        written value.
        """
        trainer = self._trainer
        connector = getattr(trainer, "_logger_connector", None)
        if trainer is None or connector is None:
            return True
        return bool(connector.should_update_logs or trainer.fast_dev_run)

    def _where(self, batch_idx: int) -> Callable[[], str]:
        """The step's place for a divergence error, formatted only if the error is raised."""
        step, epoch = self.step_plan, self.current_epoch
        stage = f"stage {step.stage.name!r}, " if step is not None else ""
        return lambda: f"{stage}epoch {epoch + 1}, batch {batch_idx + 1}"

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Accumulate the task's validation metrics."""
        self.task.eval_step("val", batch, self.features, dataloader_idx)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Accumulate the task's test metrics."""
        self.task.eval_step("test", batch, self.features, dataloader_idx)

    def on_train_start(self) -> None:
        """Put the model in training mode with the step's freeze modes (once per fit).

        Lightning no longer calls ``train()`` when fitting starts; our override applies the freeze modes. Once is
        enough: Lightning's evaluation loops restore every submodule's mode after validating. Deferred
        (GPU) loss checks are read when Lightning writes the step logs.
        """
        self.train()
        self.finite_loss.interval = max(1, int(self.trainer.log_every_n_steps or 10))

    def on_validation_start(self) -> None:
        """Read deferred loss checks before validation can score (and checkpoint) diverged weights."""
        self.finite_loss.flush()

    def on_train_epoch_start(self) -> None:
        """Start the epoch's training metrics afresh (an epoch cut short must not leak into this one)."""
        self.task.reset("train")

    def on_train_epoch_end(self) -> None:
        """Log the epoch's training metrics."""
        self.finite_loss.flush()  # the last deferred (GPU) flags; on_validation_start read the earlier ones
        self._end_epoch("train")

    def on_validation_epoch_end(self) -> None:
        """Log the validation metrics (recorded only outside Lightning's sanity check)."""
        sanity = bool(self.trainer.sanity_checking)
        self.task.sanity_checking = sanity  # what the task may learn from validation (thresholds) waits for real epochs
        self._end_epoch("val", prog_bar=True, record=not sanity)

    def on_test_epoch_end(self) -> None:
        """Log the test metrics (per-class accuracy ``test/acc_class/<name>`` included) and the test figures."""
        values = self._end_epoch("test")
        self.test_details = values.details
        for tag, draw in values.figures.items():
            self._log_figure(tag, draw)

    def _end_epoch(self, split: Split, prog_bar: bool = False, record: bool = True) -> Any:
        values = self.task.epoch_end(split, self._sum_over_processes)
        # the bar shows the loss and the task's headline metric; every value goes to the loggers
        shown = {"val/loss", self.task.monitor} if prog_bar else set()
        on_bar = {k: v for k, v in values.logged.items() if k in shown}
        if on_bar:
            self.log_dict(on_bar, prog_bar=True)
        rest = {k: v for k, v in values.logged.items() if k not in on_bar}
        if rest:
            self.log_dict(rest)
        if record:
            self.epoch_metrics[split] = values.recorded
        return values

    def _sum_over_processes(self, totals: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over the DDP processes (identity on one)."""
        return self.trainer.strategy.reduce(totals, reduce_op="sum")

    def _log_figure(self, tag: str, draw: Callable[[str], Any]) -> None:
        logger = self.logger
        if logger is None or not self.trainer.is_global_zero or not hasattr(logger.experiment, "add_figure"):
            return
        stage = self.step_plan.stage.name if self.step_plan is not None else "test"
        step = self.trainer.global_step + int(getattr(logger, "step_offset", 0))
        figure = draw(stage)
        logger.experiment.add_figure(tag, figure, global_step=step, close=True)


def classifier(
    backbone: nn.Module,
    num_classes: int,
    head_dropout: float = 0.0,
    class_names: Sequence[str] | None = None,
    regularizer: nn.Module | None = None,
    hparams: Mapping[str, Any] | None = None,
) -> TransferModule:
    """A single-label classifier: ``backbone`` → dropout → one linear head of ``num_classes``."""
    task = ClassificationTask(int(backbone.num_features), num_classes, class_names, head_dropout)
    return TransferModule(backbone, task, regularizer, hparams)


def multitask(
    backbone: nn.Module,
    num_classes: Mapping[str, int],
    weighting: LossWeighting,
    head_dropout: float = 0.0,
    class_names: Mapping[str, Sequence[str]] | None = None,
    hparams: Mapping[str, Any] | None = None,
) -> TransferModule:
    """Multi-task hard sharing: one trunk, one linear head per task (``module(x, task)``)."""
    task = MultiTaskHeads(int(backbone.num_features), num_classes, weighting, class_names, head_dropout)
    return TransferModule(backbone, task, None, hparams)
