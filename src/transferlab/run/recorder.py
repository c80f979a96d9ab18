"""RunRecorder: the Lightning callback that holds the run's :class:`~transferlab.run.state.RunState`.

Per epoch it appends a history row (what really trains: trainable count, stage, learning rate per param group;
then the epoch's training and validation metrics as the module reports them) and keeps a copy of the best
weights of the stage by the monitored validation metric. Lightning saves its ``state_dict`` in every checkpoint
and gives it back through ``load_state_dict`` when a fit resumes from one, so the record survives any number
of kills.

It also applies the stage's plateau rule (``run/stage_rules.py``) once an epoch's row is complete, and records
the stop in the state before ``last.ckpt`` is written, so a run killed right after it resumes stopped.

It is a ``Checkpoint`` subclass (it writes no file) because Lightning runs the epoch-end hook of checkpoint
callbacks *after* the module's own (a fixed rule of its fit loop): the training metrics the module computes
at the end of the epoch are in the row before ``LastCheckpoint`` — also a checkpoint callback, placed after
this one — writes it.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Checkpoint

from transferlab.model.optim import NO_DECAY_SUFFIX
from transferlab.run.stage_rules import plateau_reason
from transferlab.run.state import RunState

STATE_KEY = "transferlab.run_state"


class RunRecorder(Checkpoint):
    """Record every epoch of every plan step into ``state`` (one object for the whole run).

    Args:
        state: The run's state; the recorder writes into this very object (also when a checkpoint is loaded),
            so every holder of it sees the same record.
        monitor: The validation metric that picks the stage's best epoch (e.g. ``val/acc``).
        mode: ``max`` when higher is better, else ``min``.

    Raises:
        ValueError: For a mode other than ``max``/``min``.
    """

    def __init__(self, state: RunState, monitor: str = "val/acc", mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode={mode!r}: expected 'max' or 'min'")
        self.state = state
        self.monitor = monitor
        self.mode = mode
        #: Why the plateau rule ended the current step (read by ``run/callbacks.py::early_stop``).
        self.stopping_reason_message: str | None = None

    @property
    def state_key(self) -> str:
        """One fixed key in ``checkpoint["callbacks"]``, whatever the arguments."""
        return STATE_KEY

    # ---- checkpoint state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The run state (with the random states of now) as plain data."""
        return self.state.to_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Replace the record with a checkpoint's (in place) and restore its random states."""
        restored = RunState.from_dict(state_dict)
        self.state.__dict__.update(restored.__dict__)
        RunState.restore_rng(state_dict)

    # ---- epochs ---------------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """A step resumed after its plateau stop (killed before the next step began) stops again at once."""
        stop = self.state.early_stops.get(pl_module.step_plan.label)
        self.stopping_reason_message = None
        if stop is not None and stop.get("rule") == "plateau":
            self.stopping_reason_message = str(stop["reason"])
            trainer.should_stop = True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """Open the epoch's row: what really trains now (measured, not planned); log it at the epoch's start."""
        step = pl_module.step_plan
        optimizer = trainer.optimizers[0]
        lrs = {g["name"]: float(g["lr"]) for g in optimizer.param_groups if not g["name"].endswith(NO_DECAY_SUFFIX)}
        # Groups made only of biases/norm weights exist only under their /no_decay name.
        for g in optimizer.param_groups:
            lrs.setdefault(g["base_name"], float(g["lr"]))
        row = {
            "epoch": step.global_first_epoch + trainer.current_epoch,
            "stage": step.stage.name,
            "step": step.label,
            "trainable_params": pl_module.num_trainable(),
            "lr": lrs,
        }
        self.state.history.append(row)
        scalars = {"trainable_params": float(row["trainable_params"]), "stage": float(step.stage_index + 1)}
        # Straight to the loggers, not through self.log: ~0.3 ms a key on the host for plain numbers that no
        # callback monitors (they are in the history too). Loggers write on rank 0 only.
        for logger in trainer.loggers:
            logger.log_metrics(scalars | {f"lr/{name}": lr for name, lr in lrs.items()}, step=trainer.global_step)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """Add the validation metrics to the row; keep a copy of the weights when they are the stage's best."""
        if trainer.sanity_checking or not self.state.history:
            return
        values = pl_module.epoch_metrics.get("val", {})
        row = self.state.history[-1]
        row.update(values)
        score = values.get(self.monitor)
        if score is None or score != score:  # no such metric this epoch, or NaN: never "best"
            return
        better = score > self.state.best_score if self.mode == "max" else score < self.state.best_score
        if better:
            self.state.best_score = float(score)
            self.state.best_epoch = int(row["epoch"])
            self.state.best_state = {k: v.detach().clone().cpu() for k, v in pl_module.state_dict().items()}
        self._apply_plateau_rule(trainer, pl_module.step_plan)

    def _apply_plateau_rule(self, trainer: pl.Trainer, step: Any) -> None:
        """End the step (and so its stage) when the stage's plateau rule says so; keep why in the state."""
        stage = step.stage
        reason = plateau_reason(
            self.state.stage_rows(stage.name), self.monitor, self.mode, stage.patience, stage.min_delta
        )
        stage_epochs = step.first_epoch + trainer.current_epoch + 1
        if reason is None or stage_epochs >= stage.epochs:
            return  # going on, or the stage ends here anyway (its planned epochs are done)
        self.stopping_reason_message = f"plateau rule: {reason}"
        trainer.should_stop = True  # the engine then skips the stage's later unfreeze steps
        self.state.early_stops[step.label] = {
            "stage": stage.name,
            "rule": "plateau",
            "epochs": trainer.current_epoch + 1,
            "planned": step.epochs,
            "stage_epochs": stage_epochs,
            "stage_planned": stage.epochs,
            "reason": self.stopping_reason_message,
        }

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """Add the epoch's training metrics (the module computed them just before, see the module docstring)."""
        if self.state.history:
            self.state.history[-1].update(pl_module.epoch_metrics.get("train", {}))
