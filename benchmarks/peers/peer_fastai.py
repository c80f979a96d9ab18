r"""Peer 1: fastai's ``Learner.fine_tune`` over the timm Lite0 with the packaged weights (run in ``.venvs/fastai``).

* the model: :func:`lite0.create_lite0` with a new linear head; a splitter ``[body, head]``, so ``freeze()``
  leaves only the head (and, fastai's default ``train_bn=True``, the body's BatchNorm layers) trainable;
* ``learn.fine_tune(6, freeze_epochs=2)`` with fastai's default ``base_lr=2e-3`` (no ``lr_find``: its suggestion
  on 50 images is noise, and the default is what ``fine_tune`` ships with): 2 one-cycle epochs of the frozen
  model at 2e-3, then 6 one-cycle epochs of everything with discriminative rates ``slice(1e-5, 1e-3)``
  (body 1e-5, head 1e-3); fastai's default optimizer (Adam with decoupled weight decay 0.01) and loss
  (``CrossEntropyLossFlat``);
* fastai ``DataLoader``\\ s over the exported tensors, batch 64, shuffled (seeded with ``set_seed``), no workers,
  no augmentation; validation on the val split after every epoch (fastai's own loop); the test accuracy is that
  of the final model.

Usage:
    benchmarks/peers/.venvs/fastai/bin/python benchmarks/peers/peer_fastai.py --data <npz> --out <json> --seed 0
"""

from __future__ import annotations

import argparse
import time

import torch
from fastai.callback import progress, schedule  # noqa: F401  (they patch in Learner.no_bar, fine_tune)
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy as fastai_accuracy
from fastai.torch_core import params, set_seed
from lite0 import accuracy, add_common_args, create_lite0, load_split, seed_everything, write_result
from torch import nn
from torch.utils.data import TensorDataset

PROBE_EPOCHS, FINETUNE_EPOCHS = 2, 6


def body_head_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """The splitter: two parameter groups, everything but the classifier, then the classifier."""
    head = model.get_classifier()
    head_ids = {id(p) for p in head.parameters()}
    return [[p for p in model.parameters() if id(p) not in head_ids], params(head)]


class EpochLog(Callback):
    """Keeps every epoch's recorder row: ``Recorder.values`` starts afresh with each ``fit`` of ``fine_tune``."""

    order = 60  # after the Recorder (50), which fills its row in after_epoch

    def __init__(self) -> None:
        self.rows: list[list[float]] = []

    def after_epoch(self) -> None:
        """Copy the epoch's [train_loss, valid_loss, accuracy]."""
        self.rows.append([float(v) for v in self.learn.recorder.values[-1]])


def main() -> None:
    """Fine-tune with fastai, test and write the result JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    args = parser.parse_args()
    seed_everything(args.seed, args.threads)
    set_seed(args.seed)  # fastai's: Python, NumPy and torch (its shuffles draw from Python's random)
    split = load_split(args.data)
    x_train, y_train = split.tensors("train")
    x_val, y_val = split.tensors("val")
    x_test, y_test = split.tensors("test")
    start = time.perf_counter()
    # a last training batch of one sample is dropped: BatchNorm cannot train on it
    drop = len(x_train) > args.batch_size and len(x_train) % args.batch_size == 1
    train_set = TensorDataset(x_train, y_train)
    train_dl = DataLoader(train_set, bs=args.batch_size, shuffle=True, drop_last=drop, num_workers=0)
    valid_dl = DataLoader(TensorDataset(x_val, y_val), bs=256, shuffle=False, num_workers=0)
    dls = DataLoaders(train_dl, valid_dl, device=torch.device("cpu"))
    learn = Learner(
        dls,
        create_lite0(split.num_classes),
        loss_func=CrossEntropyLossFlat(),
        metrics=fastai_accuracy,
        splitter=body_head_splitter,
        cbs=[log := EpochLog()],
    )
    torch.set_num_threads(args.threads)  # after fastai's imports, which may set their own
    with learn.no_bar():
        learn.fine_tune(FINETUNE_EPOCHS, freeze_epochs=PROBE_EPOCHS)
    train_s = time.perf_counter() - start
    history = [
        {"epoch": i, "loss": float(row[0]), "val_loss": float(row[1]), "val_acc": float(row[2])}
        for i, row in enumerate(log.rows)
    ]
    model = learn.model
    write_result(
        args.out,
        "fastai",
        split,
        test_acc=accuracy(model, x_test, y_test),
        val_acc=accuracy(model, x_val, y_val),
        train_s=round(train_s, 2),
        epochs=len(history),
        history=history,
        config={"base_lr": 2e-3, "lr_mult": 100, "freeze_epochs": PROBE_EPOCHS, "epochs": FINETUNE_EPOCHS},
    )


if __name__ == "__main__":
    main()
