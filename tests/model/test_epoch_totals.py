"""EpochTotals: the training epoch's loss and accuracy without torchmetrics, equal to what torchmetrics gave."""

from __future__ import annotations

import math

import torch
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from transferlab.model.epoch_totals import EpochTotals


def test_matches_torchmetrics_mean_loss_and_micro_accuracy_over_uneven_batches():
    gen = torch.Generator().manual_seed(0)
    totals, mean, acc = EpochTotals(), MeanMetric(), MulticlassAccuracy(num_classes=5, average="micro")
    for size in (7, 16, 3, 16):
        logits = torch.randn(size, 5, generator=gen)
        target = torch.randint(0, 5, (size,), generator=gen)
        loss = torch.nn.functional.cross_entropy(logits, target)
        totals.update(loss, logits, target)
        mean.update(loss)
        acc.update(logits, target)
    loss_value, acc_value = totals.compute()
    assert torch.allclose(loss_value, mean.compute()) and torch.allclose(acc_value, acc.compute())
    assert (totals.steps, totals.samples) == (4, 42)


def test_reduce_sums_over_processes_and_reset_forgets():
    totals = EpochTotals()
    totals.update(torch.tensor(1.0), torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 1]))
    seen: list[torch.Tensor] = []

    def two_processes(t: torch.Tensor) -> torch.Tensor:  # as if a second rank had an identical epoch
        seen.append(t.clone())
        return t * 2

    loss, acc = totals.compute(two_processes)
    assert seen[0].tolist() == [1.0, 1.0, 1.0, 2.0]  # loss sum, correct, steps, samples
    assert float(loss) == 1.0 and float(acc) == 0.5
    totals.reset()
    loss, acc = totals.compute()
    assert math.isnan(float(loss)) and math.isnan(float(acc)), "an epoch without steps has no mean"
