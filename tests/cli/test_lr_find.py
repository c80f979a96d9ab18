"""``transferlab lr-find``: a range test over the stage's real param groups, reproducible, with a usable override."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from tests.clitools import run_cli
from transferlab.cli.main import main as cli_main
from transferlab.run.lr_find import suggest

SMALL = [
    "strategy=lp_ft",
    "backbone=small_cnn",
    "backbone.weights=null",
    "data.image_size=16",
    "trainer.enable_progress_bar=false",
]


def test_the_same_seed_gives_the_same_suggestion_and_the_groups_keep_their_ratio(tmp_path):
    outs = []
    for name in ("a", "b"):
        proc = run_cli("lr-find", *SMALL, "--steps", "30", "--output-dir", str(tmp_path / name), cwd=tmp_path)
        outs.append((proc.stdout, json.loads((tmp_path / name / "lr_find.json").read_text())))
    (out_a, a), (_, b) = outs
    assert a["suggestion"] == b["suggestion"] and a["losses"] == b["losses"], "same seed, same sweep"
    assert a["stage"] == "probe" and len(a["lrs"]) == 30 and a["lrs"][0] == pytest.approx(1e-7)
    assert a["ratios"] == {"head": 1.0, "head/no_decay": 1.0}, "a probe trains the head alone"
    assert 1e-7 <= a["suggestion"]["lr_head"] <= 1.0
    line = f"strategy.stages.probe.lr_head={a['suggestion']['lr_head']:.3g}"
    assert f"use: transferlab train {' '.join(SMALL)} {line}" in out_a, out_a
    with Image.open(tmp_path / "a" / "lr_find.png") as image:
        assert image.size[0] >= 600 and image.getextrema() != ((255, 255), (255, 255), (255, 255))


@pytest.mark.slow  # trains the probe first (into <output dir>/before), then sweeps the fine-tune
def test_a_later_stage_starts_from_the_earlier_stages_and_keeps_the_backbone_ratio(tmp_path):
    overrides = [*SMALL, "strategy.stages.finetune.lr_head=0.004", "strategy.stages.finetune.lr_backbone=0.001",
                 "strategy.stages.finetune.lr_decay=0.5"]  # fmt: skip
    out = tmp_path / "ft"
    proc = run_cli(
        "lr-find", *overrides, "--stage", "finetune", "--steps", "30", "--output-dir", str(out), cwd=tmp_path
    )
    result = json.loads((out / "lr_find.json").read_text())
    assert (out / "before" / "metrics.json").is_file(), "the probe ran for real before the sweep"
    assert list(json.loads((out / "before" / "metrics.json").read_text())["stages"]) == ["probe"]
    ratios = result["ratios"]
    assert ratios["backbone.group3"] == pytest.approx(0.25) and ratios["backbone.group2"] == pytest.approx(0.125)
    lr = result["suggestion"]["lr_head"]
    assert f"strategy.stages.finetune.lr_backbone={lr * 0.25:.3g}" in proc.stdout, proc.stdout


def test_the_steepest_descent_is_found_between_the_start_and_the_minimum():
    lrs = [10 ** (-6 + 6 * i / 99) for i in range(100)]
    # a loss that falls fastest at 1e-3 (a tanh in log10(lr)) and rises again after 1e-1
    smoothed = [2 - math.tanh(2 * (math.log10(lr) + 3)) + (max(0.0, math.log10(lr) + 1) ** 2) * 5 for lr in lrs]
    steepest, tenth = suggest(lrs, smoothed)
    assert math.log10(steepest) == pytest.approx(-3, abs=0.1)
    low = lrs[min(range(100), key=smoothed.__getitem__)]
    assert tenth == pytest.approx(low / 10)
    assert all(math.isnan(v) for v in suggest(lrs[:3], smoothed[:3]))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--stage", "nope"], "--stage nope: strategy lp_ft has no such stage; its stages: probe, finetune"),
        (["--steps", "2"], "--steps 2: the sweep needs at least 5 steps"),
        (["--min-lr", "1", "--max-lr", "0.1"], "need 0 < min < max"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(tmp_path, capsys, args, needle):
    with pytest.raises(SystemExit) as done:  # in process: the refusal comes before anything is built
        cli_main(["lr-find", *SMALL, *args, "--output-dir", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and needle in err and "Traceback" not in err, err
    assert not (tmp_path / "x").exists()
