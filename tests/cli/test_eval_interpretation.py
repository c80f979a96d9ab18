"""``transferlab eval RUN`` interprets the errors: files in ``<run>/eval/<label>/``, scored as the run scored.

One tiny real run (small_cnn on digits, one short epoch) in the main suite: eval writes the four files and its
TensorBoard events, ``predictions.csv`` gives exactly the run's ``test/acc``, and a second eval is refused
before any work without changing a byte. The rest (``--force``, ``--output-dir``, a bare model file, the report's
links, TensorBoard's content, a multi-label run) is in the slow phase.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.clitools import run_cli

TINY = [
    "backbone=small_cnn",
    "backbone.weights=null",
    "strategy=finetune",
    "strategy.stages.finetune.epochs=1",
    "strategy.stages.finetune.warmup_epochs=0",
    "callbacks=none",
]
FILES = ("interpretation.json", "per_class.csv", "predictions.csv", "top_losses.png")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _check_gallery(path: Path, count: int, rows: int, columns: int) -> None:
    from transferlab.report.plots import read_plot_data

    with Image.open(path) as image:
        image.verify()  # a whole, valid PNG
    with Image.open(path) as image:
        width, height = image.size
    data = read_plot_data(path)
    assert (data["rows"], data["columns"], len(data["samples"])) == (rows, columns, count), data
    # 2.3 x 2.95 inches per image at 100 dpi, 0.7 inches of heading and margins, at least 5.6 inches wide
    want = (100 * max(5.6, 2.3 * columns + 0.2), 100 * (2.95 * rows + 0.7))
    assert abs(width - want[0]) <= 1 and abs(height - want[1]) <= 1, ((width, height), want)


def test_eval_writes_the_interpretation_that_scores_what_the_run_scored(train_run):
    run_dir, metrics = train_run(*TINY)
    proc = run_cli("eval", str(run_dir))
    folder = run_dir / "eval" / "test"
    for name in FILES:
        assert (folder / name).is_file(), f"{name} missing in {sorted(p.name for p in folder.iterdir())}"
    assert list(folder.glob("events.out.tfevents.*")), "no TensorBoard events beside the files"
    assert len(list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))) == 1, "the run's own events untouched"
    assert "most confused (true → predicted)" in proc.stdout and "worst classes by F1" in proc.stdout, proc.stdout
    assert f"written to {folder}" in proc.stdout, proc.stdout

    # one row per test sample, in the split's order, with the split's ids; exactly the run's accuracy
    rows = _rows(folder / "predictions.csv")
    split = json.loads((run_dir / "split.json").read_text())
    assert [r["id"] for r in rows] == split["members"]["test"]
    correct = sum(r["true"] == r["predicted"] for r in rows)
    assert correct == sum(int(r["correct"]) for r in rows)
    assert float(np.float32(correct / len(rows))) == metrics["final"]["test/acc"], (correct, len(rows))
    probabilities = np.array([[float(r[f"p_{c}"]) for c in range(10)] for r in rows])
    assert np.allclose(probabilities.sum(1), 1.0, atol=1e-4), "softmax rows"
    losses = np.array([float(r["loss"]) for r in rows])
    assert losses.mean() == pytest.approx(metrics["final"]["test/loss"], rel=1e-4), "the task's per-sample loss"

    record = json.loads((folder / "interpretation.json").read_text())
    assert record["label"] == "test" and record["split"] == "own" and record["samples"] == len(rows)
    assert record["metrics"]["test/acc"] == metrics["final"]["test/acc"]
    assert sum(r["support"] for r in record["per_class"]) == len(rows)
    assert np.array(record["confusion_matrix"]).trace() == correct
    counts = [p["count"] for p in record["most_confused"]]
    assert counts == sorted(counts, reverse=True) and all(p["true"] != p["predicted"] for p in record["most_confused"])
    top = record["top_losses"]
    assert len(top) == 16 and [t["loss"] for t in top] == pytest.approx(sorted(losses, reverse=True)[:16], rel=1e-5)
    per_class = _rows(folder / "per_class.csv")
    assert [r["name"] for r in per_class] == [str(c) for c in range(10)]
    _check_gallery(folder / "top_losses.png", 16, 4, 4)

    # a second eval is refused before any work, naming the file and the flag, and changes nothing
    before = _snapshot(run_dir)
    again = run_cli("eval", str(run_dir), check=False)
    assert again.returncode == 2, again.stdout + again.stderr
    assert "interpretation.json exists" in again.stderr and "--force" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr and "transferlab eval:" not in again.stdout, "refused before testing"
    assert _snapshot(run_dir) == before, "a refused eval changed files"


@pytest.mark.slow  # a real run and five evals of it (a minute or more on 2 cores): in .ci/run's slow phase
def test_force_output_dir_and_a_bare_model_file(train_run, tmp_path):
    run_dir, metrics = train_run(*TINY)
    run_cli("eval", str(run_dir))
    folder = run_dir / "eval" / "test"
    old = _snapshot(folder)
    proc = run_cli("eval", str(run_dir), "--force", "--top-k", "3")
    new = _snapshot(folder)
    assert set(p.name for p in new) >= set(FILES) and new != old, "--force rewrites"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1, "the old events are replaced, not added to"
    _check_gallery(folder / "top_losses.png", 3, 1, 3)
    assert "written to" in proc.stdout

    # a model file outside any run dir: tables printed, nothing written, unless --output-dir
    bare = tmp_path / "elsewhere" / "model.safetensors"
    bare.parent.mkdir()
    shutil.copy(run_dir / "model.safetensors", bare)
    proc = run_cli("eval", str(bare))
    assert "printed only" in proc.stderr and "--output-dir" in proc.stderr, proc.stderr
    assert "support  precision  recall  f1" in proc.stdout and "top losses" in proc.stdout, proc.stdout
    assert sorted(p.name for p in bare.parent.iterdir()) == ["model.safetensors"], "nothing written"
    out = tmp_path / "out"
    run_cli("eval", str(bare), "--output-dir", str(out))
    rows = _rows(out / "predictions.csv")
    assert float(np.float32(sum(r["true"] == r["predicted"] for r in rows) / len(rows))) == metrics["final"]["test/acc"]

    # an --output-dir that cannot be made: one paragraph, exit 2, no traceback
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    proc = run_cli("eval", str(bare), "--output-dir", str(blocker / "sub"), check=False)
    assert proc.returncode == 2 and "is not a directory" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow  # a real run, its eval, TensorBoard's reader and a report (about 30 s)
def test_tensorboard_shows_the_eval_and_the_report_links_it(train_run, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = train_run(*TINY)
    run_cli("eval", str(run_dir))
    folder = run_dir / "eval" / "test"
    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    assert "eval/top_losses" in acc.Tags()["images"], acc.Tags()
    assert {"eval/per_class/text_summary", "eval/summary/text_summary"} <= set(acc.Tags()["tensors"]), acc.Tags()
    text = acc.Tensors("eval/per_class/text_summary")[0].tensor_proto.string_val[0].decode()
    assert text.startswith("| class | support |") and "| 9 |" in text, text

    out = run_cli("report", str(run_dir), "--out", str(tmp_path / "report"))
    assert out.returncode == 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Error analysis" in markdown, markdown
    link = next(line for line in markdown.splitlines() if "top_losses.png" in line)
    target = link.split("](", 2)[1].split(")", 1)[0]
    assert (tmp_path / "report" / target).resolve() == (folder / "top_losses.png").resolve(), link
    assert "interpretation.json" in link


@pytest.mark.slow  # a real multi-label run and its eval (about 25 s)
def test_a_multi_label_run_goes_through_the_same_path(train_run):
    run_dir, metrics = train_run(*TINY, "data=synthetic", "data.multi_label=true", "data.num_classes=4")
    run_cli("eval", str(run_dir))
    folder = run_dir / "eval" / "test"
    record = json.loads((folder / "interpretation.json").read_text())
    assert record["kind"] == "multi_label" and set(record["thresholds"]) == {f"label_{i}" for i in range(4)}
    assert record["accuracy"] == pytest.approx(metrics["final"]["test/subset_acc"], abs=1e-6)
    assert all(e["error"] in ("false positive", "false negative") for e in record["most_confused"])
    assert [r["threshold"] for r in record["per_class"]] == pytest.approx(list(record["thresholds"].values()))
    rows = _rows(folder / "predictions.csv")
    losses = np.array([float(r["loss"]) for r in rows])
    assert losses.mean() == pytest.approx(metrics["final"]["test/loss"], rel=1e-4), "mean per-sample BCE"
    _check_gallery(folder / "top_losses.png", 16, 4, 4)
