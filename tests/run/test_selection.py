"""``strategy.final=best`` (``run/selection.py``): a fine-tune that lowers val never leaves a run below its probe."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from tests.clitools import run_cli
from transferlab.run.selection import consider, finish, selection_record
from transferlab.run.state import RunState

# small_cnn on the digits: a probe that learns, then a fine-tune that SGD at rate 3 destroys, with a plateau rule
RUIN = [
    "strategy=lp_ft", "backbone=small_cnn", "backbone.weights=null", "data.image_size=16",
    "trainer.enable_progress_bar=false",
    "strategy.stages.probe.epochs=4", "strategy.stages.probe.lr_head=0.05", "strategy.stages.finetune.epochs=5",
    "strategy.stages.finetune.patience=1", "strategy.stages.finetune.optimizer=sgd",
    "strategy.stages.finetune.lr_head=3", "strategy.stages.finetune.lr_backbone=3",
]  # fmt: skip


@pytest.fixture(scope="module")
def ruined(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("selection") / "run"
    proc = run_cli("train", *RUIN, f"hydra.run.dir={run_dir}", cwd=run_dir.parent)
    return run_dir, json.loads((run_dir / "metrics.json").read_text()), proc.stdout


def test_the_run_ends_with_the_probe_when_fine_tuning_lowers_val(ruined):
    run_dir, metrics, stdout = ruined
    stages, selection = metrics["stages"], metrics["selection"]
    assert stages["finetune"]["carried"]["val"]["val/acc"] < stages["probe"]["carried"]["val"]["val/acc"]
    assert selection["rule"] == "best" and selection["stage"] == "probe", selection
    assert selection["scores"] == {name: row["carried"]["val"]["val/acc"] for name, row in stages.items()}
    # the final test and val numbers are the probe's, and so is the exported model
    assert metrics["final"]["test/acc"] == stages["probe"]["test/acc"]
    assert metrics["final"]["val/acc"] == stages["probe"]["carried"]["val"]["val/acc"]
    (best,) = (run_dir / "checkpoints" / "probe").glob("best*.ckpt")  # the probe's best epoch: what it carried
    probe = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    exported = load_file(run_dir / "model.safetensors")
    assert all(torch.equal(exported[k], probe[k]) for k in exported), "model.safetensors holds the probe's weights"
    assert "final model: stage probe" in stdout and "← final" in stdout, stdout


def test_the_plateau_rule_ended_the_fine_tune_at_its_second_epoch_and_says_why(ruined):
    _, metrics, stdout = ruined
    row = metrics["stages"]["finetune"]
    assert row["epochs"] == 2 and row["planned_epochs"] == 5
    (stop,) = row["early_stop"]
    assert stop["rule"] == "plateau" and stop["stage_epochs"] == 2 and stop["stage_planned"] == 5
    assert "did not improve by more than 0 for 1 epochs" in stop["reason"]
    assert [r["stage"] for r in metrics["epochs"]] == ["probe"] * 4 + ["finetune"] * 2
    assert "2 of 5 (stopped early)" in stdout


@pytest.mark.slow  # one more real run; the main suite checks the rule 'last' through selection_record below
def test_final_last_keeps_the_last_stage_and_the_plan_says_which(tmp_path):
    run_dir = tmp_path / "last"
    run_cli("train", *RUIN, "strategy.final=last", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["selection"]["stage"] == "finetune" and metrics["selection"]["rule"] == "last"
    assert metrics["final"]["test/acc"] == metrics["stages"]["finetune"]["test/acc"]
    plan = run_cli("plan", *RUIN, cwd=tmp_path).stdout
    assert "final model: the stage whose carried weights score best on val" in plan
    assert "up to 5 epochs (ends after 1 epochs without a better val score)" in plan


def _state_with(module: nn.Module, stages: list[tuple[str, float, float]]) -> RunState:
    state = RunState()
    for i, (name, acc, loss) in enumerate(stages):
        with torch.no_grad():
            module.weight.fill_(float(i))
        consider(state, name, {"val/acc": acc, "val/loss": loss}, module, "val/acc", "max", last=i == len(stages) - 1)
    return state


def test_ties_go_to_the_lower_val_loss_then_to_the_earlier_stage():
    module = nn.Linear(2, 2)
    assert _state_with(module, [("a", 0.8, 0.5), ("b", 0.8, 0.4)]).selection["stage"] == "b"
    assert _state_with(module, [("a", 0.8, 0.4), ("b", 0.8, 0.4)]).selection["stage"] == "a"
    assert _state_with(module, [("a", 0.8, 0.4), ("b", 0.7, 0.1)]).selection["stage"] == "a"
    state = _state_with(module, [("a", 0.9, 0.4), ("b", 0.7, 0.1)])
    assert finish(state, module, "b") and torch.equal(module.weight, torch.zeros(2, 2)), "stage a's weights back"
    stages = {"a": {"carried": {"val": {"val/acc": 0.9}}}, "b": {"carried": {"val": {"val/acc": 0.7}}}}
    record = selection_record(state, stages, "val/acc", "best")
    assert record["stage"] == "a" and record["scores"] == {"a": 0.9, "b": 0.7}
    assert selection_record(state, stages, "val/acc", "last")["stage"] == "b"
