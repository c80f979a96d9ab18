"""``transferlab validate``: every problem at once, exit codes, --json, and no data read / no weights loaded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.clitools import run_cli
from transferlab.config.compose import compose
from transferlab.run.validation import validate_config

SMALL = ["backbone=small_cnn", "data=synthetic", "strategy=finetune"]


def _problems(*overrides: str) -> dict[str, str]:
    report = validate_config(compose([*SMALL, *overrides]))
    return {p.key: p.message for p in report.problems}


# ---- the command line ---------------------------------------------------------------------------------------
def test_three_bad_keys_give_three_lines_and_exit_2():
    proc = run_cli(
        "validate", *SMALL, "data.batch_size=abc", "strategy.stages.finetune.lr_head=0", "+trainer.foo=1", check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "transferlab: error: 3 problems in the config (nothing was run):", proc.stderr
    assert len(lines) == 4, f"one line per problem:\n{proc.stderr}"
    for line, needle in zip(
        lines[1:], ("strategy.stages.finetune.lr_head=0.0", "trainer.foo", "data.batch_size='abc'"), strict=True
    ):
        assert needle in line and "Fix:" in line, f"{needle!r} with its fix expected in {line!r}"


def test_a_good_config_says_ok_with_a_one_line_summary():
    proc = run_cli("validate", *SMALL, "strategy.stages.finetune.epochs=2")
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "config OK", proc.stdout
    for needle in ("backbone small_cnn", "data synthetic (10 classes)", "strategy finetune (finetune 2 ep)", "trainer"):
        assert needle in lines[1], f"{needle!r} missing from the summary {lines[1]!r}"


@pytest.mark.slow  # a real subprocess run: in CI's slow phase, keeping the README suite under 15 min
def test_json_lists_key_value_message(tmp_path):
    proc = run_cli("validate", *SMALL, "data.batch_size=abc", "seed=-1", "--json", check=False)
    assert proc.returncode == 2, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] is False and set(out) == {"ok", "problems"}, out
    by_key = {p["key"]: p for p in out["problems"]}
    assert by_key["data.batch_size"]["value"] == "abc" and "expected an integer" in by_key["data.batch_size"]["message"]
    assert by_key["seed"]["value"] == -1, by_key
    assert all(set(p) == {"key", "value", "message"} for p in out["problems"]), out
    good = json.loads(run_cli("validate", *SMALL, "--json").stdout)
    assert good == {"ok": True, "problems": []}, good


def test_composition_errors_are_one_problem_with_exit_2():
    proc = run_cli("validate", "backbone=resnt18", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "backbone=resnt18" in proc.stderr and "did you mean backbone=resnet18" in proc.stderr, proc.stderr
    out = json.loads(run_cli("validate", "trainer.max_epoch=3", "--json", check=False).stdout)
    assert out["ok"] is False and out["problems"][0]["key"] == "trainer.max_epoch", out


def test_validate_reads_no_data_and_loads_no_weights(tmp_path):
    garbage = tmp_path / "weights.safetensors"
    garbage.write_bytes(b"\x00" * 100)  # exists, but no loader could read it
    root = tmp_path / "images"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            (root / name / f"{i}.png").write_bytes(b"not an image")  # corrupt: a run would stop at setup
    args = ["backbone=small_cnn", f"backbone.weights={garbage}", "data=image_folder", f"data.root={root}"]
    proc = run_cli("validate", *args, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("config OK"), f"{proc.stdout}\n{proc.stderr}"
    assert "image_folder (2 classes)" in proc.stdout, proc.stdout
    # what validate does check: that the file and the folder exist
    proc = run_cli("validate", "backbone=small_cnn", f"backbone.weights={tmp_path}/none.pt",
                   "data=image_folder", f"data.root={tmp_path}/nothere", "--json", check=False)  # fmt: skip
    keys = {p["key"] for p in json.loads(proc.stdout)["problems"]}
    assert proc.returncode == 2 and keys == {"backbone.weights", "data.root"}, proc.stdout


# ---- the checks, in process ---------------------------------------------------------------------------------
def test_every_group_is_checked():
    problems = _problems(
        "strategy.stages.finetune.trainable=[block9]",
        "+strategy.stages.finetune.unfreeze_every=9",
        "regularizer=l2sp",
        "regularizer.alpha=-1",
        "+feature_cache.bogus=1",
        "feature_cache.enabled=maybe",
        "trainer.channels_last=sometimes",
        "data.num_samples.train=0",
        "+num_classes=3",
        "callbacks.checkpoint.last_min_interval_s=-5",
        "data.on_device=maybe",
    )
    expected = {
        "callbacks.checkpoint.last_min_interval_s": "expected seconds >= 0. Fix:",
        "data.on_device": "expected true or false",
        "strategy.stages.finetune.unfreeze_every": "no unfreeze step fits",
        "trainer.channels_last": "expected auto, true or false",
        "data.num_samples.train": "must be ≥ 1",
        "regularizer.alpha": "must be a finite number ≥ 0",
        "feature_cache.bogus": "unknown key",
        "feature_cache.enabled": "expected true or false",
        "num_classes": "declares 3 classes but data 'synthetic' has 10",
    }
    for key, needle in expected.items():
        assert key in problems and needle in problems[key], f"{key}: {needle!r} expected in {problems}"


def test_trainable_patterns_are_checked_per_stage():
    problems = _problems(
        "strategy=lp_ft",
        "strategy.stages.probe.trainable=[nope]",
        "strategy.stages.finetune.trainable=[group9]",
    )
    assert "'nope' matches no layer group" in problems["strategy.stages.probe.trainable"], problems
    assert "'group9' matches no layer group" in problems["strategy.stages.finetune.trainable"], problems


def test_a_consequence_of_a_reported_problem_is_not_reported_again():
    # epochs=1.5 is dropped to check the rest; warmup_epochs=1 would then clash with the default epochs=1
    problems = _problems("strategy.stages.finetune.epochs=1.5", "strategy.stages.finetune.warmup_epochs=1")
    assert list(problems) == ["strategy.stages.finetune.epochs"], problems


@pytest.mark.parametrize(
    ("overrides", "key", "needle"),
    [
        (["backbone.name=tv:resnt18"], "backbone.name", "did you mean: tv:resnet18"),
        (["backbone.weights=hub"], "backbone.weights", "small_cnn has no hub weights"),
        (["backbone.weights=package"], "backbone.weights", "no pip-packaged weights"),
        (["data=digits", "data.classes=[1,12]"], "data.classes", "12 is not a digit"),
        (["data=cifar10", "data.root=/nonexistent/cifar"], "data.root", "folder not found"),
    ],
)
def test_backbone_and_data_values(overrides, key, needle):
    problems = _problems(*overrides)
    assert key in problems and needle.lower() in problems[key].lower(), problems


def test_corrupt_images_pass_validate_but_not_a_missing_class(tmp_path):
    root = tmp_path / "images"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "a" / "0.png")
    (root / "b" / "0.png").write_bytes(b"corrupt")
    assert _problems("data=image_folder", f"data.root={root}") == {}, "validate must not open images"
    (root / "c").mkdir()
    problems = _problems("data=image_folder", f"data.root={root}")
    assert "data.root" in problems and "has no images" in problems["data.root"], problems
