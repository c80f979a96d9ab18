"""The catalogue of bad input: every case is a real ``transferlab train`` / ``eval`` run in a subprocess.

Each bad job must end with exit status 2 and ONE paragraph on stderr (``transferlab: error: …``) that names the
key or file, the bad value and the fix, with no Python traceback; it must write no model or metrics into its own
run dir and leave the outputs of an earlier good run untouched. docs/errors.md lists the same cases.

The cases run two at a time (a module fixture starts the selected ones together), ~100 s on a 2-core machine,
so the catalogue runs in CI's slow phase (``pytest -m slow``); the main suite keeps bad input covered through
the config-surface subset (tests/config), ``validate`` and the preflight tests. ``pytest -k <case>`` runs just
that case.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from tests.clitools import FAST, run_cli
from transferlab.backbones.hub import unreachable_reason

# small_cnn, one short epoch: a case that got past its check would finish in seconds.
BASE = [*FAST, "backbone=small_cnn"]
# the strategy and data of cases that do not choose their own
FINETUNE = ["strategy=finetune", "strategy.stages.finetune.epochs=1", "strategy.stages.finetune.warmup_epochs=0"]
SYNTHETIC = ["data=synthetic", "data.num_samples.train=64", "data.num_samples.val=32", "data.num_samples.test=32"]
FOLDER = ["data=image_folder", "data.num_workers=0", "data.batch_size=8"]


@dataclass(frozen=True)
class Case:
    """One bad input: the command line after ``transferlab``, what stderr must say, and how it must end."""

    args: tuple[str, ...]
    needles: tuple[str, ...]
    command: str = "train"
    env: dict[str, str] = field(default_factory=dict)
    status: int = 2
    max_seconds: float | None = None


# {tmp} is the folder of the inputs built by the `inputs` fixture.
CASES: dict[str, Case] = {
    "unknown_backbone_option": Case(
        ("backbone=resnt18",), ("backbone=resnt18", "did you mean backbone=resnet18", "Fix:")
    ),
    "unknown_backbone_name": Case(
        ("backbone.name=tv:resnt18",), ("unknown backbone 'tv:resnt18'", "tv:resnet18", "transferlab ls backbone")
    ),
    "hub_weights_offline_torchvision": Case(
        ("backbone=resnet18", "backbone.weights=hub"),
        ("backbone tv:resnet18", "backbone.weights=hub", "Offline alternatives", "backbone.weights=null"),
        env={"TORCH_HOME": "{tmp}/torch_home"},
    ),
    "hub_weights_offline_timm": Case(
        ("backbone.name=timm:resnet18", "backbone.weights=hub"),
        ("backbone timm:resnet18", "cannot be reached", "not in the local cache", "backbone.weights=null"),
        env={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": "{tmp}/hf_home"},
        max_seconds=30,  # huggingface_hub alone retries for ~50 s
    ),
    "weights_file_missing": Case(
        ("backbone.weights={tmp}/nothere.safetensors",),
        ("backbone.weights={tmp}/nothere.safetensors", "no such file", "Fix:"),
    ),
    "weights_safetensors_truncated": Case(
        ("backbone.weights={tmp}/half.safetensors",), ("{tmp}/half.safetensors", "truncated or corrupt", "Fix:")
    ),
    "weights_ckpt_truncated": Case(
        ("backbone.weights={tmp}/half.ckpt",), ("{tmp}/half.ckpt", "truncated or corrupt", "Fix:")
    ),
    "weights_foreign_architecture": Case(
        ("backbone.weights={tmp}/resnet18.pth",),
        (
            "{tmp}/resnet18.pth",
            "no tensor matches backbone small_cnn",
            "MISSING 20 backbone tensors (model.stem.0.weight",
            "UNEXPECTED 120 file tensors (conv1.weight",
            "backbone=<arch>",
        ),
    ),
    "weights_pickle_not_a_state_dict": Case(
        ("backbone.weights={tmp}/notes.pkl",), ("{tmp}/notes.pkl", "not a PyTorch weights file", "Fix:")
    ),
    "data_root_missing": Case(
        (*FOLDER, "data.root={tmp}/nothere"), ("data.root={tmp}/nothere", "folder not found", "Fix:")
    ),
    "data_root_empty": Case((*FOLDER, "data.root={tmp}/empty"), ("data.root={tmp}/empty", "it is empty", "Fix:")),
    "data_class_folder_without_images": Case(
        (*FOLDER, "data.root={tmp}/no_images"), ("class folder {tmp}/no_images/b has no images", "Fix:")
    ),
    "data_corrupt_image": Case(
        (*FOLDER, "data.root={tmp}/corrupt"),
        ("data.root={tmp}/corrupt", "1 of 13 image files cannot be read", "{tmp}/corrupt/a/bad.png", "on_corrupt=skip"),
    ),
    "data_truncated_jpeg_found_while_training": Case(
        (*FOLDER, "data.root={tmp}/truncated", "data.num_workers=1"),
        ("image file {tmp}/truncated/a/cut.jpg cannot be read", "truncated", "on_corrupt=skip"),
    ),
    "trainable_pattern_matches_nothing": Case(
        ("strategy.stages.finetune.trainable=[block9]",),
        ("strategy.stages.finetune.trainable", "'block9' matches no layer group", "stem, group1", "Fix:"),
    ),
    "lr_not_positive": Case(
        ("strategy.stages.finetune.lr_head=0",), ("strategy.stages.finetune.lr_head=0.0", "must be > 0", "Fix:")
    ),
    "unfreeze_beyond_epochs": Case(
        (
            "strategy=gradual_unfreeze",
            "strategy.stages.unfreeze.epochs=2",
            "strategy.stages.unfreeze.unfreeze_every=3",
        ),
        ("strategy.stages.unfreeze.unfreeze_every=3", "no unfreeze step fits in 2 epochs", "Fix:"),
    ),
    "unknown_trainer_key": Case(
        ("trainer.max_epoch=3",), ("trainer.max_epoch=3", "unknown key", "add a new key on purpose with +trainer")
    ),
    "wrong_type_batch_size": Case(
        ("data.batch_size=abc",), ("data.batch_size='abc'", "expected an integer", "Fix: data.batch_size=<int>")
    ),
    "digit_class_out_of_range": Case(
        ("data=digits", "data.classes=[1,12]"), ("data.classes", "12 is not a digit 0..9", "Fix:")
    ),
    "unknown_experiment": Case(("experiment=digits_lpft",), ("experiment=digits_lpft", "has no option", "Fix:")),
    "eval_truncated_model": Case(
        ("{tmp}/half.safetensors",),
        ("{tmp}/half.safetensors", "cannot be read as a transferlab model", "truncated", "Fix:"),
        command="eval",
    ),
}


def _png(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(path)


def _tree(root: Path, per_class: int = 6) -> Path:
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            _png(root / name / f"img_{i}.png", 10 * c + i)
    return root


def _cut_in_half(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """A good run (dir A, with its digest) and every bad input file and folder, under one temp folder."""
    tmp = tmp_path_factory.mktemp("bad_input")
    good = tmp / "A"
    run_cli("train", *BASE, *FINETUNE, *SYNTHETIC, f"hydra.run.dir={good}", cwd=tmp)
    _cut_in_half(good / "model.safetensors", tmp / "half.safetensors")
    _cut_in_half(next(good.glob("checkpoints/**/last.ckpt")), tmp / "half.ckpt")
    torch.save(torchvision.models.resnet18().state_dict(), tmp / "resnet18.pth")
    with open(tmp / "notes.pkl", "wb") as f:
        pickle.dump({"epoch": 3, "note": "not weights"}, f)
    (tmp / "empty").mkdir()
    _tree(tmp / "no_images", per_class=0)
    _png(tmp / "no_images" / "a" / "only.png", 0)
    (tmp / "no_images" / "b" / "readme.txt").write_text("no images here")
    (_tree(tmp / "corrupt") / "a" / "bad.png").write_bytes(b"this is not a png")
    truncated = _tree(tmp / "truncated", per_class=8)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp / "cut.jpg")
    _cut_in_half(tmp / "cut.jpg", truncated / "a" / "cut.jpg")  # its header is fine: found when decoded
    return tmp, good, _digest(good)


def _fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp))


def _run(name: str, tmp: Path) -> tuple[object, float, Path]:
    case = CASES[name]
    run_dir = tmp / "runs" / name
    args = [_fill(a, tmp) for a in case.args]
    if case.command == "train":
        strategy = [] if any(a.startswith("strategy=") for a in args) else FINETUNE
        data = [] if any(a.startswith("data=") for a in args) else SYNTHETIC
        args = [*BASE, *strategy, *data, *args, f"hydra.run.dir={run_dir}"]
    env = {k: _fill(v, tmp) for k, v in case.env.items()}
    start = time.perf_counter()
    proc = run_cli(case.command, *args, cwd=tmp, check=False, env=env, timeout=300)
    return proc, time.perf_counter() - start, run_dir


@pytest.fixture(scope="module")
def outcomes(request, inputs) -> dict[str, tuple[object, float, Path]]:
    """Run the selected cases, two at a time; case name → (process, seconds, its run dir)."""
    tmp = inputs[0]
    here = request.node.path if hasattr(request.node, "path") else None
    chosen = [
        item.callspec.params["name"]
        for item in request.session.items
        if getattr(item, "path", None) == here and hasattr(item, "callspec") and "name" in item.callspec.params
    ] or list(CASES)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(chosen, pool.map(lambda n: _run(n, tmp), chosen), strict=True))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_fails_with_one_clear_paragraph(name, inputs, outcomes):
    tmp, good, digest = inputs
    case = CASES[name]
    if name == "hub_weights_offline_torchvision" and unreachable_reason("https://download.pytorch.org") is None:
        pytest.skip("download.pytorch.org is reachable: hub weights would download")
    proc, seconds, run_dir = outcomes[name]
    stderr = proc.stderr
    assert proc.returncode == case.status, f"{name}: exit {proc.returncode}, expected {case.status}\n{stderr}"
    assert "Traceback" not in stderr, f"{name}: a Python traceback reached the user:\n{stderr}"
    errors = [line for line in stderr.splitlines() if line.startswith("transferlab: error: ")]
    assert len(errors) == 1, f"{name}: expected one 'transferlab: error:' paragraph, got:\n{stderr}"
    if name != "data_truncated_jpeg_found_while_training":  # that one fails mid-epoch, after Lightning's banners
        others = [line for line in stderr.splitlines() if line.strip() and line not in errors]
        assert not others, f"{name}: stderr should hold the message only, also got:\n{stderr}"
    for needle in case.needles:
        assert _fill(needle, tmp) in errors[0], f"{name}: the message should contain {_fill(needle, tmp)!r}:\n{stderr}"
    if case.max_seconds is not None:
        assert seconds < case.max_seconds, f"{name}: took {seconds:.0f} s; the error must come in seconds"
    for output in ("model.safetensors", "metrics.json"):
        assert not (run_dir / output).exists(), f"{name}: a failed job wrote {output}"
    assert _digest(good) == digest, f"{name}: the earlier good run in {good} was changed"
