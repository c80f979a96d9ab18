"""Single-label classification: one linear head, its loss, accuracy, balanced accuracy, macro-F1, confusion.

The loss is the ``task`` group's (weighted, smoothed or focal cross-entropy, ``model/tasks/losses.py``).

Balanced accuracy is the mean of the per-class recalls and macro-F1 the mean of the per-class F1 scores, both
over the classes present in the split (scikit-learn's ``balanced_accuracy_score`` and ``f1_score(average=
"macro", labels=<present>)``): a rare class counts as much as a common one. Both come from one confusion
matrix per split, which is synced over processes like every torchmetrics state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from transferlab.model.confusion import confusion_figure, per_class_accuracy, scalar_name
from transferlab.model.epoch_totals import EpochTotals
from transferlab.model.tasks.base import EpochValues, FeaturesOf, Reduce, Split, StepOutput, named_splits
from transferlab.model.tasks.linear_head import LinearHeadTask
from transferlab.model.tasks.losses import single_label_loss
from transferlab.model.tasks.options import TaskOptions


class ClassificationTask(LinearHeadTask):
    """One label per image: ``head(dropout(features))`` gives ``(B, num_classes)`` logits.

    Args:
        num_features: Width of the backbone's features (the head's input).
        num_classes: Number of classes.
        class_names: Class names, index-aligned (``0..C-1`` when not given).
        head_dropout: Dropout probability before the head.
        options: The ``task`` group (loss, label smoothing, focal γ).
        weight: Class weights of the training loss (``task.class_weights`` resolved), or ``None``.

    Raises:
        ValueError: For ``num_classes < 1`` or a class-name list of another length.

    Example:
        >>> task = ClassificationTask(16, 3)
        >>> task(torch.zeros(2, 16)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        head_dropout: float = 0.0,
        options: TaskOptions | None = None,
        weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__(num_features, num_classes, class_names, head_dropout, options, kind="class")
        self.check_weights(class_weights=weight)
        self.num_classes = num_classes
        self.class_names = self.output_names
        # On the head (a child of the staged module, unlike the task itself), so it follows the module to the GPU;
        # not saved: it is counted from the data
        self.head.register_buffer("class_weight", weight, persistent=False)
        # No host-device sync per step: torchmetrics' input checks (NaN scan, label range via torch.unique)
        # each wait for the GPU, so they are off; labels come from our own data modules.
        lean: dict[str, Any] = {"validate_args": False}
        self.train_totals = EpochTotals()  # plain tensors: a cached-feature step is too small for torchmetrics
        self.val_loss = MeanMetric(nan_strategy="disable")
        self.test_loss = MeanMetric(nan_strategy="disable")
        # accuracy, balanced accuracy and macro-F1 all follow from the confusion counts
        self.val_confusion = MulticlassConfusionMatrix(num_classes=num_classes, **lean)
        self.test_confusion = MulticlassConfusionMatrix(num_classes=num_classes, **lean)

    # ---- loops ------------------------------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], features_of: FeaturesOf) -> StepOutput:
        """The ``task`` group's loss; loss and accuracy accumulate on the device (no per-step sync).

        ``y`` holds class indices, or class probabilities ``(B, C)`` in a mixed (mixup/CutMix) batch: its
        training accuracy then counts the larger share of each mixed pair.
        """
        x, y = batch
        features = features_of(x)
        logits = self(features)
        loss = single_label_loss(logits, y, weight=self.head.class_weight, smoothing=self.smoothing, gamma=self.gamma)
        self.train_totals.update(loss, logits, y if y.ndim == 1 else y.argmax(dim=1))
        return StepOutput(loss, inputs=x, features=features)

    def eval_step(
        self, split: Split, batch: tuple[torch.Tensor, torch.Tensor], features_of: FeaturesOf, dataloader_idx: int = 0
    ) -> None:
        """Accumulate the plain (unweighted) loss and the confusion counts."""
        x, y = batch
        logits = self(features_of(x))
        # Unweighted, so val/loss compares across loss settings. Per sample: MeanMetric(nan_strategy="disable")
        # ignores update(weight=) (torchmetrics 1.9), so batch means would over-weigh a short last batch.
        loss = F.cross_entropy(logits, y, reduction="none")
        if split == "val":
            self.val_loss.update(loss)
            self.val_confusion.update(logits, y)
        else:
            self.test_loss.update(loss)
            self.test_confusion.update(logits, y)

    def reset(self, split: Split) -> None:
        """Forget the split's accumulated values."""
        if split == "train":
            self.train_totals.reset()
        elif split == "val":
            self.val_loss.reset()
            self.val_confusion.reset()
        else:
            self.test_loss.reset()
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
            loss, confusion = self.val_loss.compute(), self.val_confusion.compute()
            self.reset(split)
            scores = {"loss": loss, **confusion_scores(confusion)}
            recorded = {f"val/{k}": float(v) for k, v in scores.items()}
            return EpochValues({f"val/{k}": v for k, v in scores.items()}, recorded)
        loss = self.test_loss.compute()
        confusion = self.test_confusion.compute()  # synced over DDP ranks like the other metrics
        self.reset(split)
        scores = {"loss": loss, **confusion_scores(confusion)}
        per_class = per_class_accuracy(confusion)
        logged: dict[str, Any] = {f"test/{k}": v for k, v in scores.items()}
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

        recorded = {f"test/{k}": float(v) for k, v in scores.items()}
        return EpochValues(logged, recorded, details, {"test/confusion_matrix": draw})

    def soft_targets(self, target: torch.Tensor) -> torch.Tensor:
        """One-hot rows ``(B, C)`` of class indices (what mixup mixes)."""
        return F.one_hot(target.long(), self.num_classes).float()

    # ---- description ------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """``num_classes`` and ``class_names``."""
        return {"num_classes": self.num_classes, "class_names": list(self.class_names)}

    def metric_names(self) -> list[str]:
        """``{train,val,test}/{loss,acc}`` and ``{val,test}/{balanced_acc,macro_f1}``."""
        extra = [f"{split}/{name}" for split in ("val", "test") for name in ("balanced_acc", "macro_f1")]
        return named_splits({"loss": 0, "acc": 0}) + extra


def confusion_scores(confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy, balanced accuracy and macro-F1 of a confusion matrix (rows: true class, columns: predicted).

    The class means run over the classes present in the split (a row with a sample), as scikit-learn's
    ``balanced_accuracy_score`` and ``f1_score(average="macro", labels=<present classes>)``; an empty matrix
    gives NaN.
    """
    c = confusion.double()
    true, predicted, hits = c.sum(dim=1), c.sum(dim=0), c.diagonal()
    present = true > 0
    nan = torch.tensor(float("nan"), device=c.device)
    if not bool(present.any()):
        return {"acc": nan.float(), "balanced_acc": nan.float(), "macro_f1": nan.float()}
    recall = hits[present] / true[present]
    denominator = (true + predicted)[present]
    f1 = torch.where(denominator > 0, 2 * hits[present] / denominator.clamp(min=1), torch.zeros_like(denominator))
    return {
        "acc": (hits.sum() / c.sum()).float(),
        "balanced_acc": recall.mean().float(),
        "macro_f1": f1.mean().float(),
    }
