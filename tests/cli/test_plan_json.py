"""``transferlab plan --json``: one JSON document, described key for key by its ``--help``."""

from __future__ import annotations

import json
import re

from transferlab.cli.commands import plan
from transferlab.cli.main import main as cli_main

SMALL = ["backbone=small_cnn", "backbone.weights=null", "data=synthetic", "strategy=lp_ft"]


def test_plan_json_is_one_document_whose_keys_the_help_names(capsys):
    capsys.readouterr()
    cli_main(["plan", *SMALL, "--json"])
    doc = json.loads(capsys.readouterr().out)  # the whole output is one document, not one row per line
    assert isinstance(doc, dict) and len(doc["epochs"]) == 2 + 6, doc["epochs"]  # lp_ft: probe 2, finetune 6
    assert [row["epoch"] for row in doc["epochs"]] == list(range(8))
    named = set(re.findall(r"\w+", plan.JSON_HELP))
    keys = {*doc, *doc["groups"][0], *doc["epochs"][0], *doc["stages"][0]}
    assert keys <= named, f"--help does not name {sorted(keys - named)}"
    assert "one JSON object" in plan.build_parser().format_help()
    assert doc["final"] == "best" and [s["name"] for s in doc["stages"]] == ["probe", "finetune"]
