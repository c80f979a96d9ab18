"""``transferlab rank`` from outside: the table, the files, the feature cache a later run reuses, bad input."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.clitools import run_cli
from transferlab.cli.commands import rank

DATA = ["data.image_size=32", "data.shots_per_class=5", "logger=none", "callbacks=none"]


def test_rank_prints_writes_and_caches_what_a_later_run_reads(tmp_path: Path) -> None:
    out = tmp_path / "out"
    common = [*DATA, f"paths.output_root={out}", f"feature_cache.dir={out}/.cache/features"]
    first = run_cli("rank", "candidates=[efficientnet_lite0,small_cnn]", *common, cwd=tmp_path)
    assert "[1/2] efficientnet_lite0: 50×1280 features (computed)" in first.stdout, first.stdout
    assert "[2/2] small_cnn: 50×256 features (computed)" in first.stdout, first.stdout
    assert "small_cnn: leep skipped: no source classifier: random init" in first.stdout, first.stdout
    (ranking,) = (out / "rank").iterdir()
    rows = list(csv.DictReader((ranking / "ranking.csv").open()))
    assert {r["candidate"] for r in rows} == {"efficientnet_lite0", "small_cnn"}, rows
    lite = next(r for r in rows if r["candidate"] == "efficientnet_lite0")
    assert float(lite["leep"]) < 0 and lite["leep_rank"] == "1" and "ImageNet head" in lite["source"], lite
    assert (ranking / "ranking.md").read_text().startswith("# Transferability ranking")
    assert len(list((out / ".cache" / "features").glob("*.safetensors"))) == 2

    train = run_cli(
        "train", *common, "strategy=feature_extraction", "strategy.stages.probe.epochs=1",
        "trainer.enable_progress_bar=false", cwd=tmp_path,
    )  # fmt: skip
    # the ranking cached the training split; the run reads it and computes only val and test
    assert re.search(r"cached features \(disk\+computed in", train.stdout + train.stderr), train.stderr[-3000:]

    # backbone=a,b (a sweep, as for train -m) lists the candidates; the run above shows up beside its scores
    again = run_cli("rank", "-m", "backbone=efficientnet_lite0,small_cnn", *common, cwd=tmp_path)
    assert "efficientnet_lite0: 50×1280 features (disk)" in again.stdout, again.stdout
    (row,) = [x for x in again.stdout.splitlines() if re.match(r"\d+ +efficientnet_lite0 ", x)]
    assert row.rstrip().endswith("(feature_extraction, 1)"), again.stdout


def _main(*argv: str) -> None:
    rank.main(list(argv))


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["candidates=[efficientnet_lite0,efficientnet_lite9]"], "candidates[1]='efficientnet_lite9': "),
        (["candidates=[checkpoint:/no/such/run]"], "no such file or directory"),
        (["data.classes=[3]", "candidates=[small_cnn]"], "holds 1 class(es) (3)"),
        (["ranking.estimators=[leap]"], "unknown estimator 'leap'"),
        (["ranking.gbc_dims=0"], "ranking.gbc_dims=0"),
        (["ranking.estimatorz=[logme]"], "estimatorz"),
        (["backbone=small_cnn,efficientnet_lite0", "candidates=[small_cnn]"], "both list candidates"),
        (["candidates=[small_cnn]", "ranking.estimators=[leep,nce]"], "all need the source classifier"),
    ],
)
def test_bad_input_stops_before_any_feature_is_computed(
    tmp_path: Path, capsys: pytest.CaptureFixture, overrides: list[str], says: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        _main(*DATA, f"paths.output_root={out}", f"feature_cache.dir={out}/.cache/features", *overrides)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and says in err and "Fix" in err, err
    assert not (out / ".cache").exists() and not (out / "rank").exists(), list(out.rglob("*")) if out.exists() else []


def test_a_checkpoint_without_a_head_for_leep_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    file = tmp_path / "backbone_only.safetensors"
    save_file({"stem.0.weight": torch.zeros(32, 3, 3, 3)}, str(file))
    with pytest.raises(SystemExit):
        _main(*DATA, f"paths.output_root={tmp_path}", f"candidates=[small_cnn@{file}]", "ranking.estimators=[leep]")
    err = capsys.readouterr().err
    assert f"{file} holds no classifier" in err and "Fix: add a feature-based estimator" in err, err


def test_a_candidate_that_cannot_be_scored_is_listed_and_the_exit_status_is_1(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    file = tmp_path / "small.safetensors"
    from transferlab.backbones.registry import create_backbone

    save_file({k: v.contiguous() for k, v in create_backbone("small_cnn").state_dict().items()}, str(file))
    with pytest.raises(SystemExit) as exit_:
        _main(*DATA, f"paths.output_root={tmp_path}", f"candidates=[efficientnet_lite0@{file},small_cnn@{file}]")
    captured = capsys.readouterr()
    assert exit_.value.code == 1, captured.err
    assert "1 of 2 candidate(s) could not be scored" in captured.err and "could not be built" in captured.err
    (ranking,) = (tmp_path / "rank").iterdir()
    rows = {r["candidate"]: r for r in csv.DictReader((ranking / "ranking.csv").open())}
    assert rows[f"small_cnn@{file}"]["logme"] and rows[f"efficientnet_lite0@{file}"]["error"], rows


def test_ranking_out_is_never_written_over(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit):
        _main(*DATA, f"paths.output_root={tmp_path}", f"ranking.out={out}", "candidates=[small_cnn]")
    assert "exists and is not an empty dir" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
