"""The ranking table: ranks and order, fine-tuned accuracy from finished runs, and the files written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from tests.report.conftest import write_job
from transferlab.report.ranking import display_rows, finetuned, order, ranks, text_table, write_outputs
from transferlab.run.candidates import Candidate
from transferlab.run.rank import RankRow
from transferlab.run.spec import BackboneChoice

DATA = {"name": "digits", "classes": [5, 6], "shots_per_class": 4, "seed": 0, "batch_size": 64, "augment": None}


def _row(label: str, name: str, weights: str | None, **scores: float | None) -> RankRow:
    return RankRow(Candidate(label, BackboneChoice(name, weights)), name, 8, 20, dict(scores), feature_seconds=0.5)


def test_ranks_put_the_highest_first_share_ties_and_leave_unscored_rows_last() -> None:
    rows = [_row("a", "a", None, s=1.0), _row("b", "b", None, s=3.0), _row("c", "c", None, s=None),
            _row("d", "d", None, s=3.0), _row("e", "e", None, s=float("nan"))]  # fmt: skip
    assert ranks(rows, "s") == [3, 1, None, 1, None]
    assert order(rows, "s") == [1, 3, 0, 2, 4]


def _run(path: Path, backbone: dict, data: dict, acc: float, strategy: str = "lp_ft") -> None:
    write_job(path, [], final={"test/acc": acc, "val/acc": acc})
    (path / "config.yaml").write_text(
        yaml.safe_dump({"backbone": backbone, "data": data, "strategy": {"name": strategy}})
    )


def test_finished_runs_of_a_candidate_on_the_same_data_pool_over_seeds(tmp_path: Path) -> None:
    export = tmp_path / "pre"
    export.mkdir()
    (export / "model.safetensors").write_bytes(b"x")
    runs = tmp_path / "runs"
    _run(runs / "0", {"name": "small_cnn", "weights": None}, DATA, 0.5)
    _run(runs / "1", {"name": "small_cnn", "weights": None}, DATA | {"seed": 1, "batch_size": 8}, 0.7)
    _run(runs / "2", {"name": "small_cnn", "weights": None}, DATA | {"shots_per_class": 20}, 0.99)  # other task
    _run(runs / "3", {"name": "small_cnn", "weights": "package"}, DATA, 0.99)  # other weights
    _run(runs / "4", {"name": "checkpoint", "weights": str(export / "model.safetensors")}, DATA, 0.8, "finetune")
    rows = [_row("small_cnn", "small_cnn", None, s=1.0), _row("ck", "checkpoint", str(export), s=2.0),
            _row("lite", "efficientnet_lite0", "package", s=0.0)]  # fmt: skip
    tuned = finetuned(rows, DATA, runs)
    assert tuned[0].values == {"lp_ft": [0.5, 0.7]} and abs(tuned[0].mean() - 0.6) < 1e-12, tuned[0]
    assert tuned[0].text() == "0.6000 ± 0.1414 (lp_ft, 2)"
    assert tuned[1].values == {"finetune": [0.8]}, tuned[1]  # a run dir and its model file are the same weights
    assert tuned[2].text() == "–" and finetuned(rows, DATA, None)[0].values == {}


def test_the_files_hold_the_same_table(tmp_path: Path) -> None:
    rows = [_row("a", "a", None, logme=1.0, gbc=-2.0), _row("b", "b", "package", logme=2.0, gbc=None)]
    rows[1].skipped["gbc"] = "a reason"
    failed = _row("c", "c", None)
    failed.error = "its features could not be computed: boom"
    rows.append(failed)
    tuned = finetuned(rows, DATA, None)
    paths = write_outputs(tmp_path, rows, ["logme", "gbc"], tuned, "transferlab rank x", ["a note"])
    assert [p.name for p in paths] == ["ranking.csv", "ranking.md", "ranking.json"]
    table = list(csv.DictReader((tmp_path / "ranking.csv").open()))
    assert [r["candidate"] for r in table] == ["b", "a", "c"]
    assert table[0]["logme_rank"] == "1" and table[1]["gbc_rank"] == "1" and table[0]["gbc"] == ""
    assert table[2]["error"].endswith("boom") and table[0]["skipped"] == "gbc: a reason"
    text = (tmp_path / "ranking.md").read_text()
    assert "| 1 | b | 20×8 | 2 (1) | – |" in text and "a reason" in text and "**failed**" in text, text
    assert json.loads((tmp_path / "ranking.json").read_text())["candidates"][0]["candidate"] == "b"
    header, lines = display_rows(rows, ["logme", "gbc"], tuned)
    printed = text_table(header, lines).splitlines()
    assert printed[0].split() == ["#", "candidate", "features", "logme", "gbc", "seconds", "fine-tuned", "test/acc"]
    assert len(printed) == 4, printed
    column = printed[0].index("logme")  # every row's logme cell starts under its header: padded columns
    assert [line[column:].split()[0] for line in printed[1:]] == ["2", "1", "–"], printed
