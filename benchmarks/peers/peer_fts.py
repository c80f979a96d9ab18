"""Peer 2: Lightning with finetuning-scheduler's ``FinetuningScheduler`` and its implicit schedule (``.venvs/fts``).

Configured as the finetuning-scheduler docs show it (``L.Trainer(callbacks=[FinetuningScheduler()])``):

* a ``LightningModule`` around :func:`lite0.create_lite0` with a new linear head, logging ``val_loss`` (the metric
  the callbacks FTS adds by itself monitor: ``FTSEarlyStopping`` with Lightning's ``EarlyStopping`` defaults,
  patience 3, and ``FTSCheckpoint`` keeping the best ``val_loss`` checkpoint);
* ``configure_optimizers``: AdamW over the parameters that require grad (FTS's phase 0 of the implicit schedule:
  the head), lr 1e-3, weight decay 0.01, no lr scheduler; parameters thawed in later phases join at FTS's
  default ``base_max_lr`` 1e-5;
* the implicit schedule: FTS walks the parameters from the top, two tensors per phase; a phase ends when
  ``FTSEarlyStopping`` fires (or at ``max_epochs``), and the best checkpoint is restored before the next phase;
* ``max_epochs=8``, batch 64 shuffled (seeded), no workers, no augmentation, no sanity validation; the test
  accuracy is ``trainer.test(ckpt_path="best")`` (FTSCheckpoint's best ``val_loss``); the final model's is kept too.

Usage:
    benchmarks/peers/.venvs/fts/bin/python benchmarks/peers/peer_fts.py --data <npz> --out <json> --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from finetuning_scheduler import FinetuningScheduler
from lite0 import accuracy, add_common_args, create_lite0, load_split, seed_everything, write_result
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

EPOCHS, LR, WEIGHT_DECAY = 8, 1e-3, 0.01


class LiteClassifier(L.LightningModule):
    """EfficientNet-Lite0 with a new head; logs ``train_loss``, ``val_loss``, ``val_acc``, ``test_acc``.

    Args:
        num_classes: Width of the new head.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.model = create_lite0(num_classes)
        self.loss = nn.CrossEntropyLoss()
        self.history: list[dict[str, Any]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Cross-entropy of one batch."""
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], prefix: str) -> None:
        x, y = batch
        logits = self(x)
        self.log(f"{prefix}_loss", self.loss(logits, y), on_epoch=True)
        self.log(f"{prefix}_acc", (logits.argmax(-1) == y).float().mean(), on_epoch=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Validation loss and accuracy."""
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Test loss and accuracy."""
        self._eval_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        """Keep the epoch's numbers and how many parameter tensors train (the schedule's depth)."""
        if self.trainer.sanity_checking or self.trainer.state.fn != "fit":
            return
        metrics = self.trainer.callback_metrics
        self.history.append(
            {
                "epoch": self.current_epoch,
                "val_loss": float(metrics["val_loss"]),
                "val_acc": float(metrics["val_acc"]),
                "trainable_tensors": sum(p.requires_grad for p in self.parameters()),
            }
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW over what trains now (phase 0: the head); FTS adds the parameters it thaws later."""
        return torch.optim.AdamW([p for p in self.parameters() if p.requires_grad], lr=LR, weight_decay=WEIGHT_DECAY)


def main() -> None:
    """Fine-tune with FTS, test and write the result JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--root", default=None, help="Lightning's default_root_dir (checkpoints, schedule)")
    args = parser.parse_args()
    seed_everything(args.seed, args.threads)
    L.seed_everything(args.seed, workers=True, verbose=False)
    split = load_split(args.data)
    x_val, y_val = split.tensors("val")
    x_test, y_test = split.tensors("test")
    x_train, y_train = split.tensors("train")
    root = Path(args.root or Path(args.out).with_suffix(""))
    start = time.perf_counter()
    drop = len(x_train) > args.batch_size and len(x_train) % args.batch_size == 1  # BatchNorm cannot train on 1
    generator = torch.Generator().manual_seed(args.seed)
    train_dl = DataLoader(
        TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True, drop_last=drop, generator=generator
    )
    val_dl = DataLoader(TensorDataset(x_val, y_val), batch_size=256)
    test_dl = DataLoader(TensorDataset(x_test, y_test), batch_size=256)
    module = LiteClassifier(split.num_classes)
    fts = FinetuningScheduler()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=EPOCHS,
        callbacks=[fts],
        logger=False,
        default_root_dir=str(root),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    torch.set_num_threads(args.threads)
    trainer.fit(module, train_dataloaders=train_dl, val_dataloaders=val_dl)
    train_s = time.perf_counter() - start
    last_test, last_val = accuracy(module.model, x_test, y_test), accuracy(module.model, x_val, y_val)
    best = trainer.test(module, dataloaders=test_dl, ckpt_path="best", verbose=False)[0]
    best_val = trainer.validate(module, dataloaders=val_dl, ckpt_path="best", verbose=False)[0]
    write_result(
        args.out,
        "finetuning_scheduler",
        split,
        test_acc=float(best["test_acc"]),
        val_acc=float(best_val["val_acc"]),
        last_test_acc=last_test,
        last_val_acc=last_val,
        train_s=round(train_s, 2),
        epochs=len(module.history),
        depth_reached=int(fts.curr_depth),
        phases_in_schedule=len(fts.ft_schedule),
        best_checkpoint=Path(trainer.checkpoint_callback.best_model_path).name,
        history=module.history,
    )


if __name__ == "__main__":
    main()
