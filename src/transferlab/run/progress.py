"""A progress bar that says which stage and which epoch of it is running."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar
from typing_extensions import override


class StageProgressBar(TQDMProgressBar):
    """TQDM bar whose description reads ``stage 2/2 finetune · epoch 3/6``.

    Args:
        num_stages: Number of stages in the run.
        refresh_rate: Batches between bar refreshes.
    """

    def __init__(self, num_stages: int, refresh_rate: int = 1) -> None:
        super().__init__(refresh_rate=refresh_rate)
        if num_stages < 1:
            raise ValueError(f"num_stages={num_stages}: must be ≥ 1")
        self.num_stages = num_stages

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        step = getattr(pl_module, "step_plan", None)
        if step is not None:
            epoch = step.first_epoch + trainer.current_epoch + 1
            self.train_progress_bar.set_description(
                f"stage {step.stage_index + 1}/{self.num_stages} {step.stage.name} · epoch {epoch}/{step.stage.epochs}"
            )

    @override
    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, int | str | float | dict]:
        """The bar's metrics without ``v_num``: the logger's version is the run's name, not a number."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
