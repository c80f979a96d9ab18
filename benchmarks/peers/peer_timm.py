"""Peer 3: a hand-written timm training loop, linear probe then fine-tune (run in ``.venvs/timm``).

The recipe transferlab's ``lp_ft`` encodes, written out by hand with timm's own optimizer and scheduler factories:

* probe, 2 epochs: only the new head trains (AdamW, lr 0.01, no weight decay, constant), the body is frozen and in
  eval mode (its BatchNorm statistics stay the pretrained ones);
* fine-tune, 6 epochs: everything trains in train mode (``timm.optim.create_optimizer_v2('adamw', lr=1e-3,
  weight_decay=0.01)``, which exempts biases and norm weights from decay), cosine decay to 0 over the 6 epochs,
  stepped per batch (``timm.scheduler.CosineLRScheduler``);
* batch 64, shuffled by a generator seeded with ``--seed``; validation accuracy after every epoch (logged only);
  the test accuracy is that of the final model.

Usage:
    benchmarks/peers/.venvs/timm/bin/python benchmarks/peers/peer_timm.py --data <npz> --out <json> --seed 0
"""

from __future__ import annotations

import argparse
import time

import torch
from lite0 import (
    accuracy,
    add_common_args,
    create_lite0,
    head_parameter_names,
    load_split,
    seed_everything,
    write_result,
)
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from torch import nn

PROBE_EPOCHS, FINETUNE_EPOCHS = 2, 6
PROBE_LR, FINETUNE_LR, WEIGHT_DECAY = 0.01, 1e-3, 0.01


def batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches of one epoch; a last batch of one sample is dropped (BatchNorm cannot train on it)."""
    order = torch.randperm(n, generator=generator)
    chunks = list(order.split(batch_size))
    return chunks[:-1] if len(chunks) > 1 and len(chunks[-1]) == 1 else chunks


def run_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    scheduler: CosineLRScheduler | None = None,
    step: int = 0,
) -> tuple[float, int]:
    """One pass over the training images; returns the mean loss and the step count after it."""
    loss_fn, total = nn.CrossEntropyLoss(), 0.0
    idx = batches(len(x), batch_size, generator)
    for b in idx:
        loss = loss_fn(model(x[b]), y[b])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if scheduler is not None:
            scheduler.step_update(step)
        total += loss.item()
    return total / len(idx), step


def main() -> None:
    """Train, test and write the result JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    args = parser.parse_args()
    seed_everything(args.seed, args.threads)
    split = load_split(args.data)
    x_train, y_train = split.tensors("train")
    x_val, y_val = split.tensors("val")
    x_test, y_test = split.tensors("test")
    start = time.perf_counter()
    model = create_lite0(split.num_classes)
    generator = torch.Generator().manual_seed(args.seed)
    history = []

    # Stage 1: linear probe. The body is frozen and kept in eval mode (pretrained BatchNorm statistics).
    head = head_parameter_names(model)
    for name, p in model.named_parameters():
        p.requires_grad_(name in head)
    optimizer = torch.optim.AdamW(model.get_classifier().parameters(), lr=PROBE_LR, weight_decay=0.0)
    for epoch in range(PROBE_EPOCHS):
        model.eval()
        model.get_classifier().train()
        loss, _ = run_epoch(model, optimizer, x_train, y_train, args.batch_size, generator)
        history.append({"epoch": epoch, "stage": "probe", "loss": loss, "val_acc": accuracy(model, x_val, y_val)})
        print(history[-1], flush=True)
    probe_test = accuracy(model, x_test, y_test)

    # Stage 2: fine-tune everything, cosine over the stage's steps.
    for p in model.parameters():
        p.requires_grad_(True)
    optimizer = create_optimizer_v2(model, "adamw", lr=FINETUNE_LR, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = len(batches(len(x_train), args.batch_size, torch.Generator().manual_seed(0)))
    scheduler = CosineLRScheduler(optimizer, t_initial=FINETUNE_EPOCHS * steps_per_epoch, lr_min=0.0, t_in_epochs=False)
    step = 0
    for epoch in range(FINETUNE_EPOCHS):
        model.train()
        loss, step = run_epoch(model, optimizer, x_train, y_train, args.batch_size, generator, scheduler, step)
        history.append(
            {"epoch": PROBE_EPOCHS + epoch, "stage": "finetune", "loss": loss, "val_acc": accuracy(model, x_val, y_val)}
        )
        print(history[-1], flush=True)
    train_s = time.perf_counter() - start
    write_result(
        args.out,
        "timm_loop",
        split,
        test_acc=accuracy(model, x_test, y_test),
        val_acc=history[-1]["val_acc"],
        probe_test_acc=probe_test,
        train_s=round(train_s, 2),
        epochs=len(history),
        history=history,
    )


if __name__ == "__main__":
    main()
