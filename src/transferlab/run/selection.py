"""Which weights a stage carries, and which stage's weights the run ends with (``strategy.final``).

Each stage carries its best epoch (``carry: best``), its last (``carry: last``) or its weight average when that
scored better on val (``ema_decay``). With ``strategy.final=best`` (the default) the run ends with the carried
weights of the stage that scored best on the monitored validation metric — ties go to the lower ``val/loss``,
then to the earlier stage — so a fine-tune that lowers val accuracy never leaves the run worse than its linear
probe. The choice reads validation numbers only; test numbers are reported, never used to choose.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from transferlab.run.state import RunState
from transferlab.strategies.spec import StageSpec


def carried(state: RunState, stage: StageSpec) -> dict[str, Any]:
    """What the stage carries: ``{"weights": best|last, "epoch": run epoch, "val": {val/*: value}}``.

    Call after the stage's steps (and before ``begin_stage`` of the next): ``state.best_epoch`` is the stage's.
    """
    rows = state.stage_rows(stage.name)
    if not rows:
        return {"weights": stage.carry, "epoch": None, "val": {}}
    row = rows[-1]
    if stage.carry == "best" and state.best_epoch is not None:
        row = next((r for r in rows if r["epoch"] == state.best_epoch), row)
    val = {k: v for k, v in row.items() if k.startswith("val/")}
    return {"weights": stage.carry, "epoch": row["epoch"], "val": val}


def consider(
    state: RunState, stage: str, val: dict[str, Any], module: nn.Module, monitor: str, mode: str, *, last: bool
) -> None:
    """Make ``stage`` the run's choice if its carried weights beat the choice so far (see the module docstring).

    Args:
        state: The run state (``state.selection`` is updated).
        stage: The finished stage.
        val: Validation metrics of its carried weights.
        module: The module holding them (copied to the CPU unless ``last``: the module ends with them anyway).
        monitor: The monitored metric.
        mode: ``max`` or ``min``.
        last: Whether it is the run's last stage.
    """
    score, loss = _number(val.get(monitor)), _number(val.get("val/loss"))
    if score is None:
        return
    current = state.selection
    if current is not None and not _beats((score, loss), (current["score"], current["loss"]), mode):
        return
    weights = None if last else {k: v.detach().clone().cpu() for k, v in module.state_dict().items()}
    state.selection = {"stage": stage, "score": score, "loss": loss, "state": weights}


def finish(state: RunState, module: nn.Module, last_stage: str) -> bool:
    """Load the chosen stage's weights when it is not the last stage; whether the weights changed."""
    choice = state.selection
    if choice is None or choice["stage"] == last_stage or choice["state"] is None:
        return False
    module.load_state_dict(choice["state"])
    return True


def selection_record(state: RunState, stages: dict[str, dict[str, Any]], monitor: str, rule: str) -> dict[str, Any]:
    """``metrics.json``'s ``selection``: the rule, the chosen stage, each stage's carried score and why."""
    scores = {name: row.get("carried", {}).get("val", {}).get(monitor) for name, row in stages.items()}
    last = list(stages)[-1] if stages else None
    chosen = state.selection["stage"] if rule == "best" and state.selection is not None else last
    if rule == "last":
        reason = "strategy.final=last: the last stage's weights"
    elif chosen == last:
        reason = f"the last stage's carried weights score best on {monitor}"
    else:
        reason = f"{chosen}'s carried weights score best on {monitor}; the later stages did not improve on them"
    return {"rule": rule, "monitor": monitor, "stage": chosen, "scores": scores, "reason": reason}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not math.isnan(value) else None


def _beats(new: tuple[float, float | None], old: tuple[float, float | None], mode: str) -> bool:
    if new[0] != old[0]:
        return new[0] > old[0] if mode == "max" else new[0] < old[0]
    return new[1] is not None and old[1] is not None and new[1] < old[1]
