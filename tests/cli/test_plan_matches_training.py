"""Acceptance: for gradual_unfreeze and lp_ft, what `transferlab plan` prints is what training does."""

import json

import pytest

from tests.clitools import run_cli

pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize(
    "overrides",
    [
        ["strategy=gradual_unfreeze", "strategy.stages.unfreeze.epochs=5"],
        pytest.param(
            [
                "strategy=lp_ft",
                "strategy.stages.probe.epochs=2",
                "strategy.stages.finetune.epochs=3",
                "strategy.stages.finetune.lr_decay=0.5",
                "strategy.stages.finetune.warmup_epochs=1",
            ],
            marks=pytest.mark.slow,  # the same check on a second strategy: CI's slow phase
        ),
    ],
    ids=["gradual_unfreeze", "lp_ft"],
)
def test_trainable_count_and_lr_per_group_at_every_epoch_equal_the_plan(overrides, train_run):
    plan = json.loads(run_cli("plan", "--json", "data.image_size=32", *overrides).stdout)
    _, metrics = train_run(*overrides)
    planned, trained = plan["epochs"], metrics["epochs"]
    assert len(trained) == len(planned), f"trained {len(trained)} epochs, plan has {len(planned)}"
    for want, got in zip(planned, trained, strict=False):
        where = f"epoch {want['epoch']} ({want['step']})"
        assert got["epoch"] == want["epoch"] and got["step"] == want["step"], f"{where}: ran {got['step']}"
        assert got["trainable_params"] == want["trainable_params"], (
            f"{where}: {got['trainable_params']} trainable parameters, plan printed {want['trainable_params']}"
        )
        assert set(got["lr"]) == set(want["lr"]), f"{where}: param groups {sorted(got['lr'])} vs {sorted(want['lr'])}"
        for name, lr in want["lr"].items():
            assert got["lr"][name] == pytest.approx(lr, rel=1e-9), f"{where}: lr/{name} {got['lr'][name]} != {lr}"
    counts = [row["trainable_params"] for row in planned]
    assert len(set(counts)) > 1, f"the plan should change the trainable set over the run: {counts}"
