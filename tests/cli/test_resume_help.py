"""``transferlab resume --help`` tells how often checkpoints are written, from the shipped config."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.clitools import REPO
from transferlab.cli.commands import resume
from transferlab.cli.main import main as cli_main
from transferlab.config.compose import compose
from transferlab.config.paths import ENV_CONF_DIR, conf_dir


def _help(capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        cli_main(["resume", "--help"])
    assert stop.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps nothing here, textwrap does: one line


def test_resume_help_states_the_composed_default_interval(capsys):
    seconds = float(compose([]).callbacks.checkpoint.last_min_interval_s)  # what a default run really uses
    text = _help(capsys)
    assert f"callbacks.checkpoint.last_min_interval_s seconds (default {seconds:g}; 0 = every epoch)" in text, text
    reliability = " ".join((REPO / "docs" / "reliability.md").read_text().split())
    assert f"`callbacks.checkpoint.last_min_interval_s` seconds (default {seconds:g}; 0 = every epoch)" in reliability


def test_resume_help_follows_the_config_tree(capsys, monkeypatch, tmp_path):
    tree = tmp_path / "conf"
    shutil.copytree(conf_dir(), tree)
    shipped = (tree / "callbacks" / "default.yaml").read_text()
    edited = re.sub(r"last_min_interval_s: \S+", "last_min_interval_s: 7", shipped)
    (tree / "callbacks" / "default.yaml").write_text(edited)
    monkeypatch.setenv(ENV_CONF_DIR, str(tree))
    assert resume.default_checkpoint_interval() == 7.0
    assert "(default 7; 0 = every epoch)" in _help(capsys)
    (tree / "callbacks" / "default.yaml").write_text("checkpoint: {}\n")
    assert resume.default_checkpoint_interval() is None
    assert "seconds (0 = every epoch)" in _help(capsys)  # the key is still named, no made-up value
