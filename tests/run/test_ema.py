"""The weight average (``run/ema.py``): the closed form after k steps, exact continuation, keep-the-better."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from transferlab.run.ema import WeightAverage, averaged_view, keep_better
from transferlab.run.state import RunState


class _Task(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 2)


class _Module(nn.Module):
    """What the average reads of a staged module: a backbone (with BatchNorm statistics) and a task's children."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
        task = _Task()
        object.__setattr__(self, "task", task)
        self.add_module("head", task.head)


def _set(module: nn.Module, value: float) -> None:
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                t.fill_(value + 0.01 * len(name))


def _run(callback: WeightAverage, module: nn.Module, values: list[float], first_step: int = 0) -> None:
    trainer = SimpleNamespace(global_step=first_step)
    callback.on_train_start(trainer, module)
    for value in values:
        _set(module, value)
        trainer.global_step += 1  # one optimizer step
        callback.on_train_batch_end(trainer, module, None, None, 0)
        callback.on_train_batch_end(trainer, module, None, None, 1)  # an accumulation batch: no new step


def test_the_average_after_k_steps_equals_the_closed_form():
    module, state, d = _Module(), RunState(), 0.8
    _set(module, 1.0)
    theta0 = {k: v.clone() for k, v in module.state_dict().items()}
    values = [2.0, -1.0, 0.5, 3.0]
    _run(WeightAverage(state, "finetune", d), module, values)
    k = len(values)
    assert state.ema["updates"] == k and state.ema["stage"] == "finetune"
    for name, got in state.ema["weights"].items():
        if not got.is_floating_point():
            assert torch.equal(got, module.state_dict()[name])  # integer buffers are copied
            continue
        offset = 0.01 * len(name)
        expected = d**k * theta0[name] + sum(
            (1 - d) * d ** (k - i) * torch.full_like(got, v + offset) for i, v in enumerate(values, start=1)
        )
        assert torch.allclose(got, expected, atol=1e-6), name
    assert set(state.ema["weights"]) == set(module.state_dict()), "backbone, head and BatchNorm statistics"


def test_an_average_saved_with_the_state_continues_exactly_in_a_new_process():
    values = [2.0, -1.0, 0.5, 3.0, 1.5]
    whole, module = RunState(), _Module()
    _set(module, 1.0)
    _run(WeightAverage(whole, "s", 0.7), module, values)

    first, module = RunState(), _Module()
    _set(module, 1.0)
    _run(WeightAverage(first, "s", 0.7), module, values[:3])
    saved = first.to_dict()  # what a checkpoint holds (a CPU copy of the average)
    restored = RunState.from_dict(saved)
    _run(WeightAverage(restored, "s", 0.7), module, values[3:], first_step=3)
    assert restored.ema["updates"] == 5
    for name, tensor in whole.ema["weights"].items():
        assert torch.equal(restored.ema["weights"][name], tensor), name


def test_a_new_stage_starts_its_own_average_from_the_weights():
    state, module = RunState(), _Module()
    _set(module, 1.0)
    _run(WeightAverage(state, "top", 0.5), module, [4.0])
    _set(module, 9.0)
    WeightAverage(state, "all", 0.5).on_train_start(SimpleNamespace(global_step=0), module)
    assert state.ema["stage"] == "all" and state.ema["updates"] == 0
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in state.ema["weights"].items())


@pytest.mark.parametrize(("average_score", "kept"), [(0.9, True), (0.7, False)])
def test_the_better_of_the_average_and_the_raw_weights_on_val_is_carried(average_score, kept):
    state, module = RunState(), _Module()
    _set(module, 1.0)
    _run(WeightAverage(state, "s", 0.5), module, [3.0])
    raw = {k: v.clone() for k, v in module.state_dict().items()}
    average = {k: v.clone() for k, v in state.ema["weights"].items()}
    seen = []

    def score() -> dict[str, float]:
        seen.append({k: v.clone() for k, v in module.state_dict().items()})
        return {"val/acc": average_score, "val/loss": 0.3}

    out = keep_better(module, state, {"val/acc": 0.8}, score, "val/acc", "max")
    assert all(torch.equal(seen[0][k], average[k]) for k in average), "the average is what was scored"
    assert out["kept"] is kept and out["updates"] == 1 and out["val"]["val/acc"] == average_score
    now = module.state_dict()
    assert all(torch.equal(now[k], (average if kept else raw)[k]) for k in raw)
    assert state.ema is None


def test_the_view_covers_the_backbone_and_heads_with_the_modules_own_keys():
    module = _Module()
    assert set(averaged_view(module).state_dict()) == set(module.state_dict())
