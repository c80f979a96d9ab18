"""The command line as a user meets it: help with examples, ls, and bad input failing before training."""

import pytest

from tests.clitools import FAST, run_cli


@pytest.mark.parametrize("command", ["validate", "plan", "eval", "ls"])
def test_each_subcommand_help_ends_with_examples(command):
    out = run_cli(command, "--help").stdout
    assert "examples:" in out, out
    assert out.rstrip().splitlines()[-1].strip().startswith("transferlab"), f"help should end with examples:\n{out}"


def test_train_help_is_hydras_with_groups_and_examples():
    out = run_cli("train", "--help").stdout
    assert "== Config groups" in out and "strategy: " in out, out
    assert "Examples:" in out and "transferlab train -m" in out, out


def test_top_level_help_and_unknown_command():
    assert "commands:" in run_cli("--help").stdout
    proc = run_cli("trian", check=False)
    assert proc.returncode == 2 and "Did you mean 'transferlab train'" in proc.stderr, proc.stderr


def test_cfg_job_prints_the_composed_config():
    out = run_cli("train", "--cfg", "job", "strategy=finetune").stdout
    assert "name: finetune" in out and "name: efficientnet_lite0" in out, out


def test_ls_lists_groups_options_and_registry_names_with_wildcards():
    out = run_cli("ls").stdout
    for group in ("backbone:", "data:", "strategy:", "trainer:"):
        assert group in out, f"{group} missing from:\n{out}"
    strategies = run_cli("ls", "strategy").stdout
    for name in ("scratch", "feature_extraction", "finetune", "gradual_unfreeze", "lp_ft"):
        assert name in strategies, strategies
    tv = run_cli("ls", "backbone", "tv:res*").stdout
    assert "tv:resnet18" in tv and "tv:resnet50" in tv and "tv:vit_b_16" not in tv, tv
    assert "timm:resnet18" in run_cli("ls", "backbone", "timm:resnet1*").stdout


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["backbone=resnt18"], "config group 'backbone' has no option 'resnt18'"),
        (["trainer.max_epoch=3"], "max_epoch"),
        (["backbone.name=tv:resnt18"], "tv:resnet18"),
        (["strategy.stages.finetune.lr_head=-1"], "strategy.stages.finetune.lr_head=-1.0: must be > 0.0"),
        (["strategy=lp_ft", "strategy.stages.finetune.trainable=[block99]"], "matches no layer group"),
        (["+trainer.max_epochs=3"], "epochs are set per stage"),
    ],
)
def test_bad_overrides_fail_before_training_with_a_clear_message(tmp_path, overrides, needle):
    run_dir = tmp_path / "run"
    proc = run_cli("train", *FAST, *overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False)
    assert proc.returncode != 0, f"{overrides} should fail:\n{proc.stdout}\n{proc.stderr}"
    assert needle in proc.stderr, f"stderr should contain {needle!r}:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, f"no bare stack trace:\n{proc.stderr}"
    assert not (run_dir / "tensorboard").exists() and not (run_dir / "checkpoints").exists(), "nothing trained"


def test_plan_prints_stages_steps_counts_and_lrs():
    out = run_cli("plan", "strategy=gradual_unfreeze", "data.image_size=32").stdout
    assert "stage 1/1 unfreeze: 8 epochs" in out, out
    assert "step unfreeze.step1" in out and "backbone groups training:" in out and "trainable " in out, out
    assert "backbone." in out, out


def test_experiment_and_debug_groups_apply_last():
    out = run_cli("train", "--cfg", "job", "experiment=digits_efficientnet_lite0_lp_ft", "debug=fast").stdout
    assert "task_name: debug" in out, "debug is applied after experiment"
    assert "limit_train_batches: 2" in out and "tags:" in out, out
