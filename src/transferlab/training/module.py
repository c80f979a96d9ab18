"""TransferModule: a backbone, a linear head, and the plan step it is currently training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from transferlab.strategies.plan import StepPlan
from transferlab.training.confusion import confusion_figure, per_class_accuracy, scalar_name
from transferlab.training.divergence import FiniteLossGuard
from transferlab.training.epoch_totals import EpochTotals
from transferlab.training.freeze import GroupIndex, apply_module_modes
from transferlab.training.optim import NO_DECAY_SUFFIX, build_optimizer, build_param_groups, build_scheduler
from transferlab.training.resume import STATE_KEY, rng_state, set_rng_state


class TransferModule(pl.LightningModule):
    """Classifier = backbone features → dropout → linear head, trained one plan step at a time.

    The engine calls :meth:`set_step` before each ``Trainer.fit``; the step decides which layer groups
    train, the BatchNorm mode and the optimizer's named param groups. Frozen parts stay in eval mode.

    Args:
        backbone: A module implementing the Backbone contract.
        num_classes: Number of output classes.
        head_dropout: Dropout probability before the head.
        hparams: Plain-data hyperparameters stored in checkpoints (``backbone_name``, ``num_classes``,
            ``config``); never modules or objects, so checkpoints load with ``weights_only=True``.

    Example:
        >>> module = TransferModule(create_backbone("tv:resnet18"), num_classes=10)  # doctest: +SKIP
        >>> module.set_step(plan.steps[0])  # doctest: +SKIP
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        head_dropout: float = 0.0,
        hparams: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes={num_classes}: must be ≥ 1")
        self.save_hyperparameters(dict(hparams or {}, num_classes=num_classes), logger=False)
        self.backbone = backbone
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(int(backbone.num_features), num_classes)
        self.groups = GroupIndex(backbone)
        # No host-device sync per step: torchmetrics' input checks (NaN scan, label range via torch.unique)
        # each wait for the GPU, so they are off; labels come from our own data modules.
        lean: dict[str, Any] = {"validate_args": False}
        self.train_totals = EpochTotals()  # plain tensors: a cached-feature step is too small for torchmetrics
        self.val_loss = MeanMetric(nan_strategy="disable")
        self.test_loss = MeanMetric(nan_strategy="disable")
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro", **lean)
        self.test_acc = MulticlassAccuracy(num_classes=num_classes, average="micro", **lean)
        self.test_confusion = MulticlassConfusionMatrix(num_classes=num_classes, **lean)
        self.step_plan: StepPlan | None = None
        self.history: list[dict[str, Any]] = []  # one row per trained epoch, over the whole run
        self.best_score: float = float("-inf")
        self.best_state: dict[str, torch.Tensor] | None = None
        self.last_test: dict[str, float] = {}
        # Per-class accuracy and confusion counts of the last test (metrics.json "test_details").
        self.last_test_details: dict[str, Any] = {}
        # A penalty module (regularizer=...) set by the engine; holds only frozen tensors.
        self.regularizer: nn.Module | None = None
        # Set by the engine when batches carry cached backbone features instead of images (feature_cache.py).
        self.features_cached = False
        # Set by training/speed.py: batches of images are made channels-last to match the weights.
        self.channels_last = False
        # The engine's run-level bookkeeping (finished stage rows, TensorBoard offset), saved in checkpoints.
        self.run_state: dict[str, Any] = {}
        self.finite_loss = FiniteLossGuard()

    # ---- plan steps -------------------------------------------------------------------------------
    def set_step(self, step: StepPlan) -> None:
        """Make ``step`` current: set ``requires_grad`` per layer group (the head always trains)."""
        self.step_plan = step
        self.groups.set_trainable(step.trainable_groups, step.stage.bn, step.stage.params)
        for p in self.head_parameters():
            p.requires_grad_(True)

    def reset_best(self) -> None:
        """Forget the best weights (called at the start of each stage)."""
        self.best_score, self.best_state = float("-inf"), None

    def train(self, mode: bool = True) -> TransferModule:
        """Switch modes; in training mode, frozen parts of the backbone stay in eval mode."""
        super().train(mode)
        if mode and self.step_plan is not None:
            apply_module_modes(self.backbone, self.step_plan.stage.bn)
        return self

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters outside the backbone, which train in every step (subclasses with more heads override)."""
        return list(self.head.parameters())

    def num_trainable(self) -> int:
        """Trainable parameter elements right now (measured, not planned)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ---- model --------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(B, num_classes)`` (``x`` are images, or features when ``features_cached``)."""
        return self.head(self.dropout(self.features(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features of a batch; a batch of cached features passes through unchanged."""
        return x if self.features_cached else self.backbone.forward_features(x)

    def configure_optimizers(self) -> dict[str, Any]:
        """Fresh optimizer for the current step; the per-epoch schedule continues the stage's shape."""
        if self.step_plan is None:
            raise RuntimeError("TransferModule.set_step() must be called before fitting")
        step = self.step_plan
        backbone = self.groups.trainable_params(step.trainable_groups, step.stage.bn, step.stage.params)
        optimizer = build_optimizer(step, build_param_groups(step, self.head_parameters(), backbone))
        scheduler = build_scheduler(step, optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    # ---- checkpoints (exact resume, training/resume.py) --------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add what Lightning does not save: history, the stage's best weights, run state, random states."""
        checkpoint[STATE_KEY] = {
            "history": self.history,
            "best_score": self.best_score,
            "best_state": self.best_state,
            "run_state": self.run_state,
            "rng": rng_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore :meth:`on_save_checkpoint`'s entry (checkpoints of older versions have none)."""
        state = checkpoint.get(STATE_KEY)
        if state is None:
            return
        self.history = list(state["history"])
        self.best_score = float(state["best_score"])
        self.best_state = state["best_state"]
        self.run_state.update(state["run_state"])
        set_rng_state(state["rng"])

    # ---- loops --------------------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Make image batches channels-last when the weights are (one cheap copy on the device)."""
        if self.channels_last and isinstance(batch, (tuple, list)) and getattr(batch[0], "ndim", 0) == 4:
            return (batch[0].contiguous(memory_format=torch.channels_last), *batch[1:])
        return batch

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Cross-entropy on one batch; loss and accuracy accumulate on the device (no per-step sync)."""
        x, y = batch
        features = self.features(x)
        logits = self.head(self.dropout(features))
        loss = F.cross_entropy(logits, y)
        logged = self.step_is_logged()
        if self.regularizer is not None:
            penalty = self.regularizer(self, x, features)
            if logged:
                self.log("train/penalty", penalty.detach(), on_step=True, on_epoch=False)
            loss = loss + penalty
        self.finite_loss.check(loss, self._where(batch_idx))
        self.train_totals.update(loss, logits, y)
        if logged:
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

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Accumulate validation loss and accuracy."""
        x, y = batch
        logits = self(x)
        self.val_loss.update(F.cross_entropy(logits, y), weight=y.numel())
        self.val_acc.update(logits, y)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Accumulate test loss and accuracy."""
        x, y = batch
        logits = self(x)
        self.test_loss.update(F.cross_entropy(logits, y), weight=y.numel())
        self.test_acc.update(logits, y)
        self.test_confusion.update(logits, y)

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
        """Record and log what is really training this epoch: trainable count, stage, LR per param group."""
        step = self.step_plan
        assert step is not None  # set_step() precedes every fit
        self.train_totals.reset()  # an epoch cut short (an exception in the previous fit) must not leak
        optimizer = self.trainer.optimizers[0]
        lrs = {g["name"]: float(g["lr"]) for g in optimizer.param_groups if not g["name"].endswith(NO_DECAY_SUFFIX)}
        # Groups made only of biases/norm weights exist only under their /no_decay name.
        for g in optimizer.param_groups:
            lrs.setdefault(g["base_name"], float(g["lr"]))
        row = {
            "epoch": step.global_first_epoch + self.current_epoch,
            "stage": step.stage.name,
            "step": step.label,
            "trainable_params": self.num_trainable(),
            "lr": lrs,
        }
        self.history.append(row)
        scalars = {"trainable_params": float(row["trainable_params"]), "stage": float(step.stage_index + 1)}
        self.write_scalars(scalars | {f"lr/{name}": lr for name, lr in lrs.items()})

    def write_scalars(self, scalars: dict[str, float]) -> None:
        """Write host-side numbers straight to the loggers at the current global step.

        Not through ``self.log``: its result collection costs ~0.3 ms a key on the host, for values that are
        plain Python numbers already and that no callback monitors (they are also in ``history``). Loggers
        write on rank 0 only.
        """
        for logger in self.loggers:
            logger.log_metrics(scalars, step=self.trainer.global_step)

    def on_train_epoch_end(self) -> None:
        """Log epoch-level training loss and accuracy."""
        self.finite_loss.flush()  # the last deferred (GPU) flags; on_validation_start read the earlier ones
        loss, acc = self.train_totals.compute(self._sum_over_processes, self.device)
        self.train_totals.reset()
        self.log_dict({"train/loss_epoch": loss, "train/acc": acc})
        if self.history:
            self.history[-1].update({"train/loss": float(loss), "train/acc": float(acc)})

    def _sum_over_processes(self, totals: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over the DDP processes (identity on one)."""
        return self.trainer.strategy.reduce(totals, reduce_op="sum")

    def on_validation_epoch_end(self) -> None:
        """Log validation metrics and keep a copy of the best weights of the stage (by ``val/acc``)."""
        loss, acc = self.val_loss.compute(), self.val_acc.compute()
        self.val_loss.reset()
        self.val_acc.reset()
        self.log_dict({"val/loss": loss, "val/acc": acc}, prog_bar=True)
        if self.trainer.sanity_checking:
            return
        score = float(acc)
        if self.history:
            self.history[-1].update({"val/loss": float(loss), "val/acc": score})
        if score > self.best_score:
            self.best_score = score
            self.best_state = {k: v.detach().clone().cpu() for k, v in self.state_dict().items()}

    def on_test_epoch_end(self) -> None:
        """Log test loss, accuracy, per-class accuracy (``test/acc_class/<name>``) and the confusion matrix image."""
        loss, acc = self.test_loss.compute(), self.test_acc.compute()
        confusion = self.test_confusion.compute()  # synced over DDP ranks like the other metrics
        self.test_loss.reset()
        self.test_acc.reset()
        self.test_confusion.reset()
        self.last_test = {"test/loss": float(loss), "test/acc": float(acc)}
        self.log_dict({"test/loss": loss, "test/acc": acc})
        names = [str(n) for n in self.hparams.get("class_names") or range(confusion.shape[0])]
        per_class = per_class_accuracy(confusion)
        self.log_dict(
            {f"test/acc_class/{scalar_name(n)}": v for n, v in zip(names, per_class, strict=False) if v is not None}
        )
        self.last_test_details = {
            "per_class_acc": dict(zip(names, per_class, strict=False)),
            "confusion_matrix": confusion.to(torch.int64).tolist(),
            "labels": names,
        }
        self._log_confusion_image(confusion, names)

    def _log_confusion_image(self, confusion: torch.Tensor, names: list[str]) -> None:
        logger = self.logger
        if logger is None or not self.trainer.is_global_zero or not hasattr(logger.experiment, "add_figure"):
            return
        stage = self.step_plan.stage.name if self.step_plan is not None else "test"
        step = self.trainer.global_step + int(getattr(logger, "step_offset", 0))
        figure = confusion_figure(confusion, names, title=f"test confusion matrix after {stage}")
        logger.experiment.add_figure("test/confusion_matrix", figure, global_step=step, close=True)
