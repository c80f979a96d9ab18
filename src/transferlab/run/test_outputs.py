"""Per-sample outputs of a ``trainer.test`` pass, read where the task scores them (for ``transferlab eval``).

The recorder hooks the head: the logits it keeps are the very tensors the task's ``eval_step`` turns into the
confusion counts or the multi-label scores, in the same pass, so the interpretation scores what the test
scored. The test loader is not shuffled (``make_loader(shuffle=False)`` outside training), so the n-th logit
row is the n-th sample of the test split, whose id is ``members["test"][n]``; :meth:`TestOutputsRecorder.
outputs` checks the count and the labels against the split before it pairs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from transferlab.data.base import split_targets
from transferlab.errors import DataError
from transferlab.model.interpretation import SampleOutputs


class TestOutputsRecorder(pl.Callback):
    """Keeps every test batch's logits (from a forward hook on the task's head) and targets, on the host.

    The head must run exactly once per test batch (single-label and multi-label tasks; a multi-task module has
    one head per task and is refused by ``eval``).

    Example:
        >>> recorder = TestOutputsRecorder()  # doctest: +SKIP
        >>> trainer = pl.Trainer(callbacks=[recorder]); trainer.test(module, datamodule=data)  # doctest: +SKIP
        >>> outputs = recorder.outputs(data.members["test"], data.test_set, names)  # doctest: +SKIP
    """

    __test__ = False  # not a pytest class, whatever its name

    def __init__(self) -> None:
        self.logits: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self._pending: list[torch.Tensor] = []
        self._handle: Any = None

    def _hook(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        self._pending.append(output.detach().float().cpu())

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Hook the head; forget an earlier pass."""
        head = getattr(pl_module, "head", None)
        if not isinstance(head, nn.Module):
            raise RuntimeError("TestOutputsRecorder needs a module with one head (module.head)")
        self.logits, self.targets, self._pending = [], [], []
        self._handle = head.register_forward_hook(self._hook)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Pair the batch's one head output with its targets."""
        pending, self._pending = self._pending, []
        if len(pending) != 1:
            raise RuntimeError(f"test batch {batch_idx}: the head ran {len(pending)} times, expected once")
        targets = batch[1].detach().cpu()
        if len(targets) != len(pending[0]):
            raise RuntimeError(f"test batch {batch_idx}: {len(pending[0])} logit rows for {len(targets)} targets")
        self.logits.append(pending[0])
        self.targets.append(targets)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Remove the hook."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def outputs(
        self, ids: Sequence[str], dataset: Dataset, names: Sequence[str], thresholds: np.ndarray | None = None
    ) -> SampleOutputs:
        """The recorded pass as :class:`SampleOutputs`: probabilities, decisions and per-sample losses.

        Decisions are the task's: the argmax of the logits (single-label, what the confusion matrix counts), or
        ``sigmoid(logits) >= thresholds`` in float32 (multi-label). Losses are the plain (unweighted) ones the
        task averages into ``test/loss``.

        Args:
            ids: The test split's sample ids (``members["test"]``), in the split's order.
            dataset: The test split, whose labels must equal the recorded targets in order.
            names: Class or label names.
            thresholds: A multi-label head's ``(L,)`` thresholds; ``None`` for single-label.

        Raises:
            DataError: When the pass does not line up with the split (fewer samples than ids, another order).
        """
        width = len(names)
        logits = torch.cat(self.logits) if self.logits else torch.zeros(0, width)
        targets = torch.cat(self.targets) if self.targets else torch.zeros(0, dtype=torch.long)
        expected = split_targets(dataset)
        if len(logits) != len(ids) or len(expected) != len(ids):
            raise DataError(
                f"the test pass gave {len(logits)} outputs for a test split of {len(ids)} sample ids and "
                f"{len(expected)} samples (unreadable files left out?): per-sample outputs cannot be matched to "
                "their ids. Fix: check the data with 'transferlab validate' or set data.on_corrupt=fail."
            )
        if not np.array_equal(np.asarray(expected, dtype=np.float64), targets.double().numpy()):
            raise DataError(
                "the test loader served the test split in another order than its sample ids (the labels differ): "
                "per-sample outputs cannot be matched to their ids. Fix: a test loader must not shuffle."
            )
        if thresholds is None:
            y = targets.long()
            probabilities = torch.softmax(logits, dim=1)
            predicted = logits.argmax(dim=1).numpy() if len(logits) else np.zeros(0, dtype=np.int64)
            losses = F.cross_entropy(logits, y, reduction="none")
            target_array = y.numpy()
        else:
            y = targets.float()
            probabilities = torch.sigmoid(logits)
            predicted = probabilities.numpy() >= np.asarray(thresholds, dtype=np.float32)
            # the task's test/loss is the mean over every (sample, label) element: a sample's loss is its mean
            losses = F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(dim=1)
            target_array = y.numpy()
        return SampleOutputs(
            ids=[str(i) for i in ids],
            names=[str(n) for n in names],
            probabilities=probabilities.numpy(),
            losses=losses.numpy(),
            targets=target_array,
            predicted=predicted,
            thresholds=None if thresholds is None else np.asarray(thresholds, dtype=np.float32),
        )
