"""An exponential moving average of the weights per stage (``ema_decay``), with timm's ``ModelEmaV3``.

Every optimizer step moves the average toward the weights: ``ema ← d·ema + (1 − d)·θ`` over every floating
tensor of the backbone and the heads (BatchNorm running statistics included; integer buffers are copied). The
average starts from the weights at the stage's start, spans the stage's unfreeze steps and lives in the run state,
so every checkpoint (mid-epoch ones too) holds it and a resumed run averages exactly as an uninterrupted one.
At the end of the stage the engine scores it on val beside the carried raw weights and carries the better
(:func:`keep_better`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
from timm.utils import ModelEmaV3
from torch import nn

from transferlab.run.state import RunState

log = logging.getLogger(__name__)


def averaged_view(module: nn.Module) -> nn.ModuleDict:
    """The parts of a staged module that the average covers: its backbone and the task's children with weights.

    The view's ``state_dict`` keys are the module's own (``backbone.*``, ``head.*``), so an average loads back
    with ``module.load_state_dict(..., strict=False)``; a regularizer's frozen copies are left out.
    """
    keys = {key.split(".", 1)[0] for key in module.state_dict()}
    parts = {"backbone": module.backbone}  # type: ignore[attr-defined]
    parts |= {name: child for name, child in module.task.named_children() if name in keys}  # type: ignore[attr-defined]
    return nn.ModuleDict(parts)


class WeightAverage(pl.Callback):
    """Keep the stage's weight average in ``state.ema`` while a step fits.

    Args:
        state: The run state (the average's record lives there).
        stage: The stage's name.
        decay: The decay ``d`` (``ema_decay``).
    """

    def __init__(self, state: RunState, stage: str, decay: float) -> None:
        self.state, self.stage, self.decay = state, stage, decay
        self.ema: ModelEmaV3 | None = None
        self.view: nn.ModuleDict | None = None
        self._seen_step = -1

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """Start the average from the weights (a new stage) or continue the stage's (a later step, a resume)."""
        self.view = averaged_view(pl_module)
        self.ema = ModelEmaV3(self.view, decay=self.decay)
        record = self.state.ema
        if record is not None and record.get("stage") == self.stage:
            self.ema.module.load_state_dict(record["weights"])
        else:
            record = {"stage": self.stage, "updates": 0}
        record["weights"] = self.ema.module.state_dict()  # live: a checkpoint copies them when written
        self.state.ema = record
        self._seen_step = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        """One update per optimizer step (not per batch under gradient accumulation)."""
        if self.ema is None or trainer.global_step == self._seen_step:
            return
        self._seen_step = trainer.global_step
        self.ema.update(self.view)
        self.state.ema["updates"] += 1  # type: ignore[index]


def keep_better(
    module: nn.Module,
    state: RunState,
    raw: dict[str, float],
    score: Callable[[], dict[str, float]],
    monitor: str,
    mode: str,
) -> dict[str, Any]:
    """Score the stage's average on val and carry it when it beats the raw weights (which stay otherwise).

    Args:
        module: The staged module, holding the carried raw weights.
        state: The run state with the stage's average (``state.ema``).
        raw: Validation metrics of the carried raw weights.
        score: Validation metrics of the weights the module holds now (a pass over the val split).
        monitor: The monitored metric.
        mode: ``max`` or ``min``.

    Returns:
        ``{"updates", "val": <the average's metrics>, "kept": bool}`` for the stage's row.
    """
    record = state.ema or {}
    raw_weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
    module.load_state_dict(record["weights"], strict=False)
    averaged = score()
    a, r = averaged.get(monitor), raw.get(monitor)
    better = a is not None and a == a and (r is None or r != r or (a > r if mode == "max" else a < r))
    if not better:
        module.load_state_dict(raw_weights)
    log.info(
        "EMA of the weights (%d updates): %s %.4f vs the raw weights' %s → carrying the %s",
        record.get("updates", 0), monitor, a if a is not None else float("nan"),
        f"{r:.4f}" if r is not None else "n/a", "average" if better else "raw weights",
    )  # fmt: skip
    state.ema = None  # the next stage starts its own average
    return {"updates": int(record.get("updates", 0)), "val": averaged, "kept": bool(better)}
