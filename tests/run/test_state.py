"""RunState and RunRecorder: one record, saved and restored in place, whoever holds a reference to it."""

from __future__ import annotations

import random

import pytest
import torch

from transferlab.run.recorder import STATE_KEY, RunRecorder
from transferlab.run.state import RunState


def _state() -> RunState:
    state = RunState()
    state.stages["probe"] = {"epochs": 2, "val/acc": 0.5}
    state.history.append({"epoch": 0, "stage": "probe", "val/acc": 0.5})
    state.best_score, state.best_epoch = 0.5, 0
    state.best_state = {"head.weight": torch.ones(2, 2)}
    state.step_offset = 7
    state.ddp_sync["probe"] = ["ab", "ab"]
    state.early_stops["finetune"] = {"stage": "finetune", "rule": "plateau", "epochs": 2, "reason": "r"}
    state.selection = {"stage": "probe", "score": 0.5, "loss": 1.0, "state": {"head.weight": torch.zeros(2, 2)}}
    state.ema = {"stage": "finetune", "updates": 3, "weights": {"head.weight": torch.full((2, 2), 0.25)}}
    state.lr_found["finetune"] = {"lr_head": 0.003, "lr_backbone": None}
    state.head_init["probe"] = {"penalty": 0.1, "scale": 8.0, "val_acc": 0.75}
    return state


def test_a_state_round_trips_through_plain_data_with_its_random_states():
    random.seed(1)
    saved = _state().to_dict()  # captures the random state of now
    expected = random.random()
    restored = RunState.from_dict(saved)
    assert restored.stages == {"probe": {"epochs": 2, "val/acc": 0.5}} and restored.step_offset == 7
    assert torch.equal(restored.best_state["head.weight"], torch.ones(2, 2))
    # the recipe records: a plateau stop, the cross-stage choice, the stage's weight average, lr: auto's rate
    assert restored.early_stops["finetune"]["rule"] == "plateau" and restored.lr_found["finetune"]["lr_head"] == 0.003
    assert restored.head_init["probe"] == {"penalty": 0.1, "scale": 8.0, "val_acc": 0.75}
    assert restored.selection["stage"] == "probe" and torch.equal(
        restored.selection["state"]["head.weight"], torch.zeros(2, 2)
    )
    assert restored.ema["updates"] == 3 and torch.equal(
        restored.ema["weights"]["head.weight"], torch.full((2, 2), 0.25)
    )
    RunState.restore_rng(saved)
    assert random.random() == expected, "the random stream continues where it was saved"


def test_loading_a_checkpoint_updates_the_very_object_every_holder_sees():
    # the kill-twice bug: the engine kept a reference to a dict that a checkpoint load replaced
    held = RunState()
    recorder = RunRecorder(held)
    engine_view = recorder.state
    recorder.load_state_dict(_state().to_dict())
    assert engine_view is held and held.stages["probe"]["epochs"] == 2, "the loaded record is in the held object"
    held.stages["top"] = {"epochs": 3}
    assert set(recorder.state_dict()["stages"]) == {"probe", "top"}, "what is saved next holds every stage"


def test_a_state_of_another_format_is_refused():
    with pytest.raises(ValueError, match="format"):
        RunState.from_dict({"format": "transferlab.run_state.v1"})
    assert RunRecorder(RunState()).state_key == STATE_KEY


def test_begin_stage_forgets_only_the_previous_stages_best():
    state = _state()
    state.begin_stage("max")
    assert state.best_state is None and state.best_score == float("-inf") and state.best_epoch is None
    assert state.stages and state.history, "rows and history stay"
    state.begin_stage("min")
    assert state.best_score == float("inf")
