"""RunState: everything a run records, in one object that saves and restores itself with the checkpoint.

The engine and the :class:`~transferlab.run.recorder.RunRecorder` write to it; nothing else keeps a copy.
A checkpoint holds it as the recorder's Lightning callback state (``checkpoint["callbacks"]``), so a run killed
at any point, any number of times, resumes with exactly the record an uninterrupted run has at that point:
the finished stages' rows, the per-epoch history, the current stage's best weights and score, the
TensorBoard step offset and the DDP weight digests. Random states are captured when the state is saved.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch

from transferlab.run.rng import rng_state, set_rng_state

#: Format tag of the saved state; a checkpoint of another format is not resumed from.
FORMAT = "transferlab.run_state.v2"


@dataclass
class RunState:
    """What a run records (see the module docstring).

    Attributes:
        stages: Stage name → its row (epochs, seconds, best val metrics, the stage test), in run order.
        history: One row per trained epoch over the whole run (trainable count, LRs, train and val metrics).
        best_score: The current stage's best monitored value (``-inf``/``inf`` before its first validation).
        best_epoch: The run-level epoch of that score (``None`` before).
        best_state: A CPU copy of the module's ``state_dict`` at that epoch (what ``carry: best`` loads).
        step_offset: The TensorBoard step at which the current plan step started.
        ddp_sync: Step label → the weight digest of every rank after that step (under DDP).
        early_stops: Step label → how a callback ended that step early (stage, epochs run, planned, reason).
        selection: The cross-stage choice of ``strategy.final=best`` so far: ``{"stage", "score", "loss",
            "state"}`` of the finished stage whose carried weights scored best on val (``state``: their CPU copy).
        ema: The current stage's weight average: ``{"stage", "updates", "weights"}`` (``run/ema.py``).
        lr_found: Stage → what its ``lr: auto`` range test chose (``{"lr_head", "lr_backbone", ...}``).
        head_init: Stage → how its ``head_init: ridge`` set the head (penalty, logit scale, val accuracy).
    """

    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = float("-inf")
    best_epoch: int | None = None
    best_state: dict[str, torch.Tensor] | None = None
    step_offset: int = 0
    ddp_sync: dict[str, list[str]] = field(default_factory=dict)
    early_stops: dict[str, dict[str, Any]] = field(default_factory=dict)
    selection: dict[str, Any] | None = None
    ema: dict[str, Any] | None = None
    lr_found: dict[str, dict[str, Any]] = field(default_factory=dict)
    head_init: dict[str, dict[str, Any]] = field(default_factory=dict)

    def begin_stage(self, mode: str = "max") -> None:
        """Forget the previous stage's best weights (each stage carries its own best)."""
        self.best_score = float("-inf") if mode == "max" else float("inf")
        self.best_epoch, self.best_state = None, None

    def stage_rows(self, stage: str) -> list[dict[str, Any]]:
        """The history rows of ``stage``."""
        return [row for row in self.history if row["stage"] == stage]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (tensors and containers only) for the checkpoint, with the random states of now."""
        return {
            "format": FORMAT,
            "stages": copy.deepcopy(self.stages),
            "history": copy.deepcopy(self.history),
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "step_offset": self.step_offset,
            "ddp_sync": copy.deepcopy(self.ddp_sync),
            "early_stops": copy.deepcopy(self.early_stops),
            "selection": self.selection,
            "ema": _cpu_copy(self.ema),  # the live average (a mid-epoch checkpoint holds it as of that step)
            "lr_found": copy.deepcopy(self.lr_found),
            "head_init": copy.deepcopy(self.head_init),
            "rng": rng_state(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        """The state :meth:`to_dict` saved (random states are not touched; see :meth:`restore_rng`).

        Raises:
            ValueError: For data of another format (an older transferlab's checkpoint).
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"run state of format {found!r}, expected {FORMAT}")
        return cls(
            stages=copy.deepcopy(data["stages"]),
            history=copy.deepcopy(data["history"]),
            best_score=float(data["best_score"]),
            best_epoch=data["best_epoch"],
            best_state=data["best_state"],
            step_offset=int(data["step_offset"]),
            ddp_sync=copy.deepcopy(data["ddp_sync"]),
            early_stops=copy.deepcopy(data.get("early_stops", {})),  # absent in checkpoints of 0.x runs
            selection=data.get("selection"),
            ema=data.get("ema"),
            lr_found=copy.deepcopy(data.get("lr_found", {})),
            head_init=copy.deepcopy(data.get("head_init", {})),
        )

    @staticmethod
    def restore_rng(data: dict[str, Any]) -> None:
        """Set the python, numpy and torch random states saved with ``data``."""
        set_rng_state(data["rng"])


def _cpu_copy(ema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The EMA record with its weights copied to the CPU (``None`` stays ``None``)."""
    if ema is None:
        return None
    return {**ema, "weights": {k: v.detach().clone().cpu() for k, v in ema["weights"].items()}}
