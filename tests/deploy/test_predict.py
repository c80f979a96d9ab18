"""``transferlab predict`` from outside: it scores what the run scored, and bad inputs get rows or clear errors."""

from __future__ import annotations

import csv
import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.clitools import FAST, run_cli
from tests.deploy.conftest import write_photos


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_predict_on_the_runs_test_split_reproduces_its_confusion_matrix(folder_run, tmp_path):
    run_dir, metrics = folder_run
    test_files = json.loads((run_dir / "split.json").read_text())["members"]["test"]
    (tmp_path / "test.csv").write_text("path\n" + "\n".join(test_files) + "\n")
    out = tmp_path / "preds.csv"
    proc = run_cli("predict", str(run_dir), str(tmp_path / "test.csv"), "--output", str(out), "--top-k", "3")
    assert f"predicted {len(test_files)} images" in proc.stderr
    rows = _rows(out)
    assert [r["path"] for r in rows] == test_files
    details = metrics["test_details"]
    labels = details["labels"]
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    for r in rows:
        confusion[labels.index(Path(r["path"]).parent.name), labels.index(r["label"])] += 1
        probs = [float(r[f"top{i}_probability"]) for i in (1, 2, 3)]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert r["label"] == r["top1"] and r["error"] == ""
    assert confusion.tolist() == details["confusion_matrix"]  # every test image classified as the run did
    assert np.trace(confusion) / confusion.sum() == pytest.approx(metrics["final"]["test/acc"])


def test_unreadable_files_get_a_row_saying_why_and_never_stop_the_others(folder_run, tmp_path):
    run_dir, _ = folder_run
    photos = write_photos(tmp_path / "photos", per_class=2)
    (photos / "red" / "text.jpg").write_text("not a picture")
    good = photos / "red" / "red_1.png"
    (photos / "red" / "cut.png").write_bytes(good.read_bytes()[:60])  # a PNG cut off in its header chunks
    (photos / "README.txt").write_text("left out: no image suffix")
    out = tmp_path / "p.jsonl"
    # the exact command the run's model card gives, with this folder and output
    line = next(x for x in (run_dir / "README.md").read_text().splitlines() if x.startswith("transferlab predict"))
    args = shlex.split(line.split("#")[0])[1:]
    assert args[:3] == ["predict", str(run_dir), "photos/"]
    proc = run_cli(*args[:2], str(photos), "-o", str(out))
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == 8
    assert rows["text.jpg"]["error"] == "not an image file PIL can identify"
    assert "cannot be decoded" in rows["cut.png"]["error"] or "identify" in rows["cut.png"]["error"]
    assert rows["red_1.png"]["label"] in {"red", "green", "blue"} and "error" not in rows["red_1.png"]
    assert "2 files could not be read" in proc.stderr and "left out 1 files" in proc.stderr


def test_an_existing_output_is_kept_unless_force(folder_run, tmp_path):
    run_dir, _ = folder_run
    photo = write_photos(tmp_path / "photos", per_class=1) / "red" / "red_0.jpg"
    out = tmp_path / "p.csv"
    out.write_text("precious\n")
    proc = run_cli("predict", str(run_dir), str(photo), "-o", str(out), check=False)
    assert proc.returncode == 2 and "exists and is kept" in proc.stderr and "--force" in proc.stderr
    assert out.read_text() == "precious\n"
    run_cli("predict", str(run_dir), str(photo), "-o", str(out), "--force", "--tta")
    assert _rows(out)[0]["path"] == str(photo)


def test_refusals_before_any_work(folder_run, tmp_path):
    run_dir, _ = folder_run
    photo = write_photos(tmp_path / "photos", per_class=1) / "red" / "red_0.jpg"
    killed = tmp_path / "killed"
    shutil.copytree(run_dir, killed)
    (killed / "metrics.json").unlink()  # what a run stopped from outside leaves: checkpoints, no metrics.json
    (killed / "model.safetensors").unlink()
    (tmp_path / "empty").mkdir()
    (tmp_path / "nocol.csv").write_text("a,b\n1,2\n")
    cases = {
        "did not finish": [str(killed), str(photo)],
        "not a run directory": [str(tmp_path / "empty"), str(photo)],
        "does not exist. Fix: create it": [str(run_dir), str(photo), "-o", str(tmp_path / "no" / "p.csv")],
        "no image files in this folder": [str(run_dir), str(tmp_path / "empty")],
        "no path column": [str(run_dir), str(tmp_path / "nocol.csv")],
        "--top-k 0: must be at least 1": [str(run_dir), str(photo), "--top-k", "0"],
    }
    for needle, args in cases.items():
        proc = run_cli("predict", *args, check=False)
        assert proc.returncode == 2, (needle, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr, (needle, proc.stderr)
    assert "last.ckpt" in run_cli("predict", str(killed), str(photo), check=False).stderr


@pytest.mark.slow
def test_multi_label_rows_hold_every_label_at_or_above_its_threshold(tmp_path):
    from transferlab.deploy.loaded import load_for_inference

    run_dir = tmp_path / "run"
    run_cli(
        "train", *FAST, "data=synthetic", "data.multi_label=true", "backbone=small_cnn", "backbone.weights=null",
        "strategy=finetune", f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    out = tmp_path / "p.jsonl"
    run_cli("predict", str(run_dir), str(tmp_path / "*.png"), "-o", str(out), "--top-k", "10")
    model = load_for_inference(run_dir)
    thresholds = dict(zip(model.class_names, model.thresholds.tolist(), strict=True))
    for row in map(json.loads, out.read_text().splitlines()):
        scores = {t["label"]: t["probability"] for t in row["top_k"]}
        expected = {n for n, s in scores.items() if s >= thresholds[n] - 1e-6}
        assert {lab["label"] for lab in row["labels"]} == expected
