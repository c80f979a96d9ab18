"""``strategy=auto`` from the command line: ``plan`` shows the choice and why; ``train`` runs and records it."""

from __future__ import annotations

import json

import pytest

from tests.clitools import FAST, run_cli

# 20 digits per class: inside the band where the quick probe decides (real Lite0 weights, 32 px)
BAND = [*FAST, "data=digits", "data.shots_per_class=20", "strategy=auto", "+strategy.max_stage_epochs=1"]


@pytest.fixture(scope="module")
def planned_and_trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auto")
    plan = json.loads(run_cli("plan", *BAND, "--json", cwd=tmp).stdout)
    text = run_cli("plan", *BAND, cwd=tmp).stdout
    run_dir = tmp / "run"
    proc = run_cli("train", *BAND, f"hydra.run.dir={run_dir}", cwd=tmp)
    return plan, text, json.loads((run_dir / "metrics.json").read_text()), proc, run_dir


def test_plan_shows_the_choice_its_reasons_and_the_pinning_override(planned_and_trained):
    plan, text, *_ = planned_and_trained
    choice = plan["auto"]
    assert choice["recipe"] in ("probe", "lp_ft", "finetune")
    assert choice["inputs"]["shots"] == 20 and choice["inputs"]["classes"] == 10
    assert 0 < choice["inputs"]["probe_acc"] <= 1  # the band: the quick probe ran, on real weights
    assert f"auto: chose recipe {choice['recipe']} (pin it: strategy.auto.recipe={choice['recipe']})" in text
    assert "because 20 training images per class (median over 10 classes) is between few_shots=8" in text
    assert "quick probe val acc" in text
    assert [s["name"] for s in plan["stages"]] == {"probe": ["probe"], "lp_ft": ["probe", "finetune"],
                                                    "finetune": ["finetune"]}[choice["recipe"]]  # fmt: skip


def test_train_makes_the_same_choice_and_records_it(planned_and_trained):
    plan, _, metrics, proc, run_dir = planned_and_trained
    choice = metrics["strategy_choice"]
    assert choice["recipe"] == plan["auto"]["recipe"] and choice["reasons"] == plan["auto"]["reasons"]
    assert choice["inputs"]["probe_acc"] == plan["auto"]["inputs"]["probe_acc"]
    assert metrics["strategy"] == "auto" and list(metrics["stages"]) == [s["name"] for s in plan["stages"]]
    assert "strategy=auto chose" in proc.stderr + proc.stdout
    card = (run_dir / "README.md").read_text()
    assert f"(chose `{choice['recipe']}`: " in card
    first = next(iter(metrics["stages"].values()))
    if choice["recipe"] != "finetune":  # its ridge head starts from the same features as the quick probe did
        assert first["head_init"]["val_acc"] == pytest.approx(choice["inputs"]["probe_acc"], abs=1e-6)


def test_a_pinned_recipe_is_what_runs(tmp_path):
    out = json.loads(run_cli("plan", *BAND, "strategy.auto.recipe=finetune", "--json", cwd=tmp_path).stdout)
    assert out["auto"]["recipe"] == "finetune" and out["auto"]["forced"] is True
    assert [s["name"] for s in out["stages"]] == ["finetune"]
