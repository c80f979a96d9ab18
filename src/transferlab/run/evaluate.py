"""Score the weights a module holds on its validation split, outside ``Trainer.fit`` (the EMA's end-of-stage pass).

It runs the task's own validation step and epoch end on every val batch, in the trainer's precision, without
logging and without touching the run's history: what the recorder would have recorded for those weights.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device


def validation_metrics(
    module: Any, loaders: Iterable[Any] | Any, device: torch.device, trainer: pl.Trainer
) -> dict[str, float]:
    """The task's recorded validation metrics (``val/acc``, ``val/loss``, …) of the module's current weights.

    Args:
        module: The staged module (its task scores; its inputs say whether batches are images or features).
        loaders: The val loader, or a list of them (multi-task: one per task, index = ``dataloader_idx``).
        device: Where to score.
        trainer: The step's trainer (its precision plugin gives the autocast of validation).
    """
    loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
    was_training = module.training
    module.to(device)
    module.eval()
    task = module.task
    task.reset("val")
    with torch.no_grad(), trainer.precision_plugin.val_step_context():
        for index, loader in enumerate(loaders):
            for batch in loader:
                batch = module.on_after_batch_transfer(move_data_to_device(batch, device), index)
                module.validation_step(batch, 0, index)
    values = task.epoch_end("val", lambda totals: totals)  # every rank scores the whole split: nothing to sum
    module.train(was_training)
    return dict(values.recorded)
