"""Multi-label classification: several labels per image, one sigmoid per label, thresholds tuned on validation.

The head is ``head(dropout(features))``: ``(B, L)`` logits, one independent sigmoid per label. Training uses the
``task`` group's BCE (optionally weighted per label, with ``pos_weight``, smoothed or focal;
``model/tasks/losses.py``); validation and test losses are the plain unweighted BCE, so ``val/loss`` compares
across loss settings.

Metrics of the validation and test splits (``model/multilabel_metrics.py``, equal to scikit-learn's):
``map`` (macro average precision over the labels with at least one positive in the split — a label without
positives has no defined AP and is left out), ``micro_f1``, ``macro_f1`` and ``subset_acc`` at the decision
thresholds. Training records its loss only (one device add per step).

Thresholds: at the end of every real validation epoch (never during Lightning's sanity check) the threshold
of each label (``task.threshold=per_label``) or one threshold for all (``global``) is chosen on the validation
scores to maximise F1, then stored in the buffer ``head.thresholds``. Being part of ``state_dict`` they are in
every checkpoint, in the stage's best weights (``carry: best`` brings back the thresholds tuned with those
weights) and in ``model.safetensors``; the test uses the stored thresholds and never tunes on test data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import CatMetric, MeanMetric

from transferlab.model.confusion import scalar_name
from transferlab.model.multilabel_metrics import multilabel_scores, per_label_report, tune_thresholds
from transferlab.model.tasks.base import EpochValues, FeaturesOf, Reduce, Split, StepOutput
from transferlab.model.tasks.linear_head import LinearHeadTask
from transferlab.model.tasks.losses import multi_label_loss
from transferlab.model.tasks.options import TaskOptions

#: Metrics of the validation and test splits.
EVAL_METRICS = ("loss", "map", "micro_f1", "macro_f1", "subset_acc")
THRESHOLDS = "thresholds"
"""Name of the head's threshold buffer: ``head.thresholds`` in checkpoints and exports."""


class LossTotal:
    """Mean per-step training loss of an epoch, summed on the device (no sync per step; see ``EpochTotals``)."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.steps = 0

    def reset(self) -> None:
        """Forget the epoch."""
        self.total, self.steps = None, 0

    def update(self, loss: torch.Tensor) -> None:
        """Add one step's scalar loss."""
        loss = loss.detach().float()
        self.total = loss if self.total is None else self.total + loss
        self.steps += 1

    def compute(self, reduce: Reduce, device: torch.device) -> torch.Tensor:
        """The mean over the steps of every process (NaN for an epoch without steps)."""
        if self.total is None:
            totals = torch.zeros(2, device=device)
        else:
            steps = torch.tensor([float(self.steps)], device=self.total.device)
            totals = torch.cat((self.total.reshape(1), steps))
        totals = reduce(totals)
        return totals[0] / totals[1] if float(totals[1]) > 0 else torch.tensor(float("nan"), device=totals.device)


def _scores_state() -> CatMetric:
    # nan checks would sync with the device on every update; torchmetrics syncs the lists over DDP ranks
    return CatMetric(nan_strategy="disable")


class MultiLabelTask(LinearHeadTask):
    """Several labels per image: ``head(dropout(features))`` gives ``(B, L)`` logits; batches are ``(x, y)``.

    ``y`` is a ``(B, L)`` float32 multi-hot tensor.

    Args:
        num_features: Width of the backbone's features (the head's input).
        num_labels: Number of labels ``L``.
        label_names: Label names, index-aligned (``0..L-1`` when not given).
        head_dropout: Dropout probability before the head.
        options: The ``task`` group (loss, label smoothing, focal γ, threshold mode).
        weight: ``(L,)`` per-label weights of the training loss (``task.class_weights``), or ``None``.
        pos_weight: ``(L,)`` weights of the positive terms of the training BCE (``task.pos_weight``), or ``None``.

    Raises:
        ValueError: For ``num_labels < 1``, a name list of another length or weights of another shape.

    Example:
        >>> task = MultiLabelTask(16, 3)
        >>> task(torch.zeros(2, 16)).shape, task.head.thresholds.tolist()
        (torch.Size([2, 3]), [0.5, 0.5, 0.5])
    """

    monitor = "val/map"
    monitor_mode = "max"

    def __init__(
        self,
        num_features: int,
        num_labels: int,
        label_names: Sequence[str] | None = None,
        head_dropout: float = 0.0,
        options: TaskOptions | None = None,
        weight: torch.Tensor | None = None,
        pos_weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__(num_features, num_labels, label_names, head_dropout, options, kind="label")
        self.check_weights(weight=weight, pos_weight=pos_weight)
        self.num_labels = num_labels
        self.label_names = self.output_names
        # On the head (a child of the staged module), so they follow it to the GPU and into state_dict: the
        # thresholds are saved with every checkpoint and export; the loss weights are counted from the data, so
        # they are not saved.
        self.head.register_buffer(THRESHOLDS, torch.full((num_labels,), 0.5))
        self.head.register_buffer("label_weight", None if weight is None else weight.float(), persistent=False)
        self.head.register_buffer("pos_weight", None if pos_weight is None else pos_weight.float(), persistent=False)
        self.train_loss = LossTotal()
        self.val_loss = MeanMetric(nan_strategy="disable")
        self.test_loss = MeanMetric(nan_strategy="disable")
        self.val_scores, self.val_targets = _scores_state(), _scores_state()
        self.test_scores, self.test_targets = _scores_state(), _scores_state()

    @property
    def class_names(self) -> list[str]:
        """The label names (the name every task uses for its outputs)."""
        return list(self.label_names)

    def thresholds(self) -> np.ndarray:
        """The stored decision thresholds ``(L,)`` (float32)."""
        return getattr(self.head, THRESHOLDS).detach().cpu().numpy().copy()

    # ---- loops ------------------------------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], features_of: FeaturesOf) -> StepOutput:
        """The ``task`` group's BCE; the loss accumulates on the device."""
        x, y = batch
        features = features_of(x)
        logits = self(features)
        loss = multi_label_loss(
            logits,
            y,
            weight=self.head.label_weight,
            pos_weight=self.head.pos_weight,
            smoothing=self.smoothing,
            gamma=self.gamma,
        )
        self.train_loss.update(loss)
        return StepOutput(loss, inputs=x, features=features)

    def eval_step(
        self, split: Split, batch: tuple[torch.Tensor, torch.Tensor], features_of: FeaturesOf, dataloader_idx: int = 0
    ) -> None:
        """Accumulate the plain BCE and the batch's scores (probabilities) and targets."""
        x, y = batch
        logits = self(features_of(x)).float()
        target = y.to(logits)
        loss, scores, targets = self._states(split)
        # Unweighted, so val/loss compares across loss settings. Per element, not the batch mean with a weight:
        # MeanMetric(nan_strategy="disable") drops weights (torchmetrics 1.9), which would over-weigh a short
        # last batch; each element counting once gives the mean over the split.
        loss.update(F.binary_cross_entropy_with_logits(logits, target, reduction="none"))
        scores.update(torch.sigmoid(logits))
        targets.update(target)

    def _states(self, split: Split) -> tuple[MeanMetric, CatMetric, CatMetric]:
        """The split's loss, scores and targets accumulators (validation or test)."""
        if split == "val":
            return self.val_loss, self.val_scores, self.val_targets
        return self.test_loss, self.test_scores, self.test_targets

    def reset(self, split: Split) -> None:
        """Forget the split's accumulated values."""
        if split == "train":
            self.train_loss.reset()
            return
        for metric in self._states(split):
            metric.reset()

    def _gathered(self, split: Split) -> tuple[float, np.ndarray, np.ndarray]:
        """The split's mean loss, scores and targets over every process (as numpy), then reset."""
        loss_metric, *states = self._states(split)
        empty = np.zeros((0, self.num_labels), dtype=np.float32)
        arrays = []
        for state in states:
            # An epoch without batches (limit_val_batches=0). Under DDP every rank sees batches (the distributed
            # sampler pads the split), so all of them reach compute, which gathers the lists over the ranks.
            if state.update_count == 0:
                arrays.append(empty)
                continue
            value = state.compute().detach().float().cpu().reshape(-1, self.num_labels)
            arrays.append(value.numpy())
        loss = float(loss_metric.compute()) if arrays[0].size else float("nan")
        self.reset(split)
        return loss, arrays[0], arrays[1]

    def epoch_end(self, split: Split, reduce: Reduce) -> EpochValues:
        """The split's metrics; a real validation epoch first tunes the thresholds; the test adds details."""
        if split == "train":
            loss = self.train_loss.compute(reduce, self.head.weight.device)
            self.reset(split)
            return EpochValues({"train/loss_epoch": loss}, {"train/loss": float(loss)})
        loss, scores, targets = self._gathered(split)
        if split == "val" and not self.sanity_checking and len(scores):
            tuned = tune_thresholds(scores, targets, self.options.threshold)
            getattr(self.head, THRESHOLDS).copy_(torch.from_numpy(tuned))
        thresholds = self.thresholds()
        if len(scores):
            values = {"loss": loss, **multilabel_scores(scores, targets, thresholds)}
        else:
            values = dict.fromkeys(EVAL_METRICS, float("nan"))
        recorded = {f"{split}/{k}": float(values[k]) for k in EVAL_METRICS}
        logged: dict[str, Any] = dict(recorded)
        if split == "val":
            return EpochValues(logged, recorded)
        per_label = per_label_report(scores, targets, thresholds, self.label_names)
        for name, row in per_label.items():
            if row["ap"] is not None:
                logged[f"test/ap_label/{scalar_name(name)}"] = row["ap"]
            logged[f"test/f1_label/{scalar_name(name)}"] = row["f1"]
        details = {
            "labels": list(self.label_names),
            "threshold_mode": self.options.threshold,
            THRESHOLDS: dict(zip(self.label_names, map(float, thresholds), strict=True)),
            "per_label": per_label,
        }

        def draw(stage: str) -> Any:
            return ap_figure(per_label, title=f"test average precision per label after {stage}")

        return EpochValues(logged, recorded, details, {"test/ap_per_label": draw})

    def soft_targets(self, target: torch.Tensor) -> torch.Tensor:
        """The 0/1 label rows as floats (what mixup mixes)."""
        return target.float()

    # ---- description ------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """``num_classes`` (labels), ``class_names`` and ``multi_label: True``."""
        return {"num_classes": self.num_labels, "class_names": list(self.label_names), "multi_label": True}

    def export_metadata(self) -> dict[str, Any]:
        """The tuned thresholds by label name, and how they were tuned (``per_label`` / ``global``)."""
        values = map(float, self.thresholds())
        return {
            "multi_label": True,
            THRESHOLDS: dict(zip(self.label_names, values, strict=True)),
            "threshold_mode": self.options.threshold,
        }

    def metric_names(self) -> list[str]:
        """``train/loss`` and ``{val,test}/{loss,map,micro_f1,macro_f1,subset_acc}``."""
        return ["train/loss"] + [f"{split}/{name}" for split in ("val", "test") for name in EVAL_METRICS]


def ap_figure(per_label: dict[str, dict[str, Any]], title: str = "test average precision per label") -> Any:
    """A bar chart of each label's test AP (labels without positives shown empty), its threshold printed above."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(per_label)
    aps = [per_label[n]["ap"] if per_label[n]["ap"] is not None else 0.0 for n in names]
    fig = Figure(figsize=(min(14.0, 2.0 + 0.5 * len(names)), 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(range(len(names)), aps, color="tab:blue")
    ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 10 else 0)
    ax.set_ylim(0.0, 1.1)
    ax.set_ylabel("average precision")
    ax.set_title(title)
    if len(names) <= 30:  # the threshold of each label, where it stays readable
        for i, n in enumerate(names):
            ax.text(i, aps[i] + 0.02, f"t={per_label[n]['threshold']:.2f}", ha="center", fontsize=7)
    fig.tight_layout()
    return fig
