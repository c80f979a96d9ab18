"""Where ``transferlab eval`` writes, decided from paths alone: labels, refusals, print-only, unwritable folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transferlab.cli.eval_target import eval_label, plan_target


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "checkpoints" / "finetune").mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"final": {}}))
    (run / "model.safetensors").write_bytes(b"")
    (run / "checkpoints" / "finetune" / "last.ckpt").write_bytes(b"")
    return run


def test_labels_name_the_overrides_and_a_model_other_than_the_export(tmp_path):
    run = _run(tmp_path)
    assert eval_label([], run, run) == "test"
    assert eval_label([], run / "model.safetensors", run) == "test"
    assert eval_label([], run / "checkpoints" / "finetune" / "last.ckpt", run) == "test@finetune_last.ckpt"
    got = eval_label(["data=image_folder", "data.root='~/my photos'"], run, run)
    assert got == "data=image_folder,data.root=~_my_photos", got
    assert len(eval_label([f"data.classes=[{','.join(map(str, range(200)))}]"], run, run)) == 100


def test_a_finished_run_writes_into_its_eval_folder_and_an_earlier_eval_is_refused(tmp_path, capsys):
    run = _run(tmp_path)
    target = plan_target(run, [], None, force=False)
    assert target.folder is not None and target.folder.resolve() == (run / "eval" / "test").resolve()
    assert not (run / "eval").exists(), "deciding writes nothing"
    target.folder.mkdir(parents=True)
    (target.folder / "per_class.csv").write_text("x")
    with pytest.raises(SystemExit) as stop:
        plan_target(run, [], None, force=False)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "per_class.csv exists" in err and "--force" in err and "--output-dir" in err, err
    assert plan_target(run, [], None, force=True).folder == target.folder


def test_a_model_outside_a_run_dir_prints_only_unless_output_dir(tmp_path):
    bare = tmp_path / "loose" / "model.safetensors"
    bare.parent.mkdir()
    bare.write_bytes(b"")
    target = plan_target(bare, [], None, force=False)
    assert target.folder is None and "printed only" in target.note and "--output-dir" in target.note
    assert plan_target(bare, [], tmp_path / "out", force=False).folder == tmp_path / "out"


def test_an_unusable_output_dir_is_refused_in_one_paragraph(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for folder in (blocker, blocker / "sub"):
        with pytest.raises(SystemExit) as stop:
            plan_target(tmp_path / "missing", [], folder, force=False)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and "is not a directory" in err and "Fix: pass --output-dir" in err, err
        assert len(err.strip().splitlines()) == 1, err
