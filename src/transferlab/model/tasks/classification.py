"""Single-label classification: dropout → one linear head, cross-entropy, accuracy and a confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from transferlab.model.confusion import confusion_figure, per_class_accuracy, scalar_name
from transferlab.model.epoch_totals import EpochTotals
from transferlab.model.tasks.base import EpochValues, FeaturesOf, Reduce, Split, StepOutput, Task, named_splits
from transferlab.strategies.plan import HEAD


class ClassificationTask(Task):
    """One label per image: ``head(dropout(features))`` gives ``(B, num_classes)`` logits.

    Args:
        num_features: Width of the backbone's features (the head's input).
        num_classes: Number of classes.
        class_names: Class names, index-aligned (``0..C-1`` when not given).
        head_dropout: Dropout probability before the head.

    Raises:
        ValueError: For ``num_classes < 1`` or a class-name list of another length.

    Example:
        >>> task = ClassificationTask(16, 3)
        >>> task(torch.zeros(2, 16)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self, num_features: int, num_classes: int, class_names: Sequence[str] | None = None, head_dropout: float = 0.0
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes={num_classes}: must be ≥ 1")
        names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(num_classes)]
        if len(names) != num_classes:
            raise ValueError(f"{len(names)} class names for {num_classes} classes")
        self.num_classes = num_classes
        self.class_names = names
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(int(num_features), num_classes)
        # No host-device sync per step: torchmetrics' input checks (NaN scan, label range via torch.unique)
        # each wait for the GPU, so they are off; labels come from our own data modules.
        lean: dict[str, Any] = {"validate_args": False}
        self.train_totals = EpochTotals()  # plain tensors: a cached-feature step is too small for torchmetrics
        self.val_loss = MeanMetric(nan_strategy="disable")
        self.test_loss = MeanMetric(nan_strategy="disable")
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro", **lean)
        self.test_acc = MulticlassAccuracy(num_classes=num_classes, average="micro", **lean)
        self.test_confusion = MulticlassConfusionMatrix(num_classes=num_classes, **lean)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(B, num_classes)``."""
        return self.head(self.dropout(features))

    # ---- parameters -----------------------------------------------------------------------------------
    def head_groups(self) -> dict[str, list[nn.Parameter]]:
        """One param group, ``head``."""
        return {HEAD: list(self.head.parameters())}

    # ---- loops ------------------------------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], features_of: FeaturesOf) -> StepOutput:
        """Cross-entropy; loss and accuracy accumulate on the device (no per-step sync)."""
        x, y = batch
        features = features_of(x)
        logits = self(features)
        loss = F.cross_entropy(logits, y)
        self.train_totals.update(loss, logits, y)
        return StepOutput(loss, inputs=x, features=features)

    def eval_step(
        self, split: Split, batch: tuple[torch.Tensor, torch.Tensor], features_of: FeaturesOf, dataloader_idx: int = 0
    ) -> None:
        """Accumulate loss and accuracy (and the confusion matrix when testing)."""
        x, y = batch
        logits = self(features_of(x))
        if split == "val":
            self.val_loss.update(F.cross_entropy(logits, y), weight=y.numel())
            self.val_acc.update(logits, y)
        else:
            self.test_loss.update(F.cross_entropy(logits, y), weight=y.numel())
            self.test_acc.update(logits, y)
            self.test_confusion.update(logits, y)

    def reset(self, split: Split) -> None:
        """Forget the split's accumulated values."""
        if split == "train":
            self.train_totals.reset()
        elif split == "val":
            self.val_loss.reset()
            self.val_acc.reset()
        else:
            self.test_loss.reset()
            self.test_acc.reset()
            self.test_confusion.reset()

    def epoch_end(self, split: Split, reduce: Reduce) -> EpochValues:
        """Loss and accuracy of the split; the test adds per-class accuracy and the confusion matrix."""
        if split == "train":
            loss, acc = self.train_totals.compute(reduce, self.head.weight.device)
            self.reset(split)
            # train/loss is also logged per step: the epoch value gets its own TensorBoard tag
            recorded = {"train/loss": float(loss), "train/acc": float(acc)}
            return EpochValues({"train/loss_epoch": loss, "train/acc": acc}, recorded)
        if split == "val":
            loss, acc = self.val_loss.compute(), self.val_acc.compute()
            self.reset(split)
            return EpochValues({"val/loss": loss, "val/acc": acc}, {"val/loss": float(loss), "val/acc": float(acc)})
        loss, acc = self.test_loss.compute(), self.test_acc.compute()
        confusion = self.test_confusion.compute()  # synced over DDP ranks like the other metrics
        self.reset(split)
        per_class = per_class_accuracy(confusion)
        logged: dict[str, Any] = {"test/loss": loss, "test/acc": acc}
        logged |= {
            f"test/acc_class/{scalar_name(n)}": v
            for n, v in zip(self.class_names, per_class, strict=False)
            if v is not None
        }
        details = {
            "per_class_acc": dict(zip(self.class_names, per_class, strict=False)),
            "confusion_matrix": confusion.to(torch.int64).tolist(),
            "labels": list(self.class_names),
        }
        names = list(self.class_names)

        def draw(stage: str) -> Any:
            return confusion_figure(confusion, names, title=f"test confusion matrix after {stage}")

        return EpochValues(
            logged, {"test/loss": float(loss), "test/acc": float(acc)}, details, {"test/confusion_matrix": draw}
        )

    # ---- description ------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """``num_classes`` and ``class_names``."""
        return {"num_classes": self.num_classes, "class_names": list(self.class_names)}

    def metric_names(self) -> list[str]:
        """``{train,val,test}/{loss,acc}``."""
        return named_splits({"loss": 0, "acc": 0})
