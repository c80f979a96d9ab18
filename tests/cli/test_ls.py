"""``transferlab ls``: every config group of conf/ (nested ones too), whole-sentence descriptions, wrapping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.clitools import run_cli
from transferlab.cli.main import main as cli_main
from transferlab.config.paths import ENV_CONF_DIR, conf_dir


def _discovered_groups() -> dict[str, list[str]]:
    """Every folder under conf/ that holds option files → their names (walked here, not by the code under test)."""
    root = conf_dir()
    groups = {}
    for folder in sorted(p for p in root.rglob("*") if p.is_dir() and not p.name.startswith((".", "_"))):
        names = sorted(f.stem for f in folder.glob("*.yaml"))
        if names:
            groups[folder.relative_to(root).as_posix()] = names
    return groups


GROUPS = _discovered_groups()


def _ls(capsys, *args: str) -> str:
    capsys.readouterr()
    cli_main(["ls", *args])
    return capsys.readouterr().out


def _section(out: str, group: str) -> str:
    """The lines of ``group:`` up to the next group header."""
    found = re.search(rf"^{re.escape(group)}:\n((?:  .*\n|\s*\n)*)", out, re.MULTILINE)
    assert found, f"no '{group}:' section in:\n{out}"
    return found.group(1)


def test_conf_has_nested_groups():
    assert "hydra/launcher" in GROUPS and len(GROUPS) >= 12, GROUPS


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_ls_group_names_each_option_file(capsys, monkeypatch, group):
    monkeypatch.delenv("COLUMNS", raising=False)
    section = _section(_ls(capsys, group), group)
    for name in GROUPS[group]:
        assert re.search(rf"^  {re.escape(name)}(  |$)", section, re.MULTILINE), f"{group}: {name} missing:\n{section}"


def test_ls_lists_every_group_of_conf_with_its_options(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    out = _ls(capsys)
    for group, names in GROUPS.items():
        section = _section(out, group)
        assert all(re.search(rf"^  {re.escape(n)}\b", section, re.MULTILINE) for n in names), section
    assert "hydra/sweeper:" not in out, "Hydra's own groups only on request ('hydra/*')"


def test_ls_hydra_groups_include_hydras_own_options(capsys):
    launchers = _section(_ls(capsys, "hydra/launcher"), "hydra/launcher")
    for name in ("basic", "joblib", "parallel", "slurm", "slurm_local"):
        assert re.search(rf"^  {name}\b", launchers, re.MULTILINE), launchers
    assert "built into Hydra" in launchers
    sweepers = _section(_ls(capsys, "hydra/sweeper"), "hydra/sweeper")  # no folder in conf/: Hydra's and plugins'
    assert re.search(r"^  basic\b", sweepers, re.MULTILINE) and re.search(r"^  optuna\b", sweepers, re.MULTILINE)
    assert "hydra/sweeper/sampler:" in _ls(capsys, "hydra/*")


def test_ls_unknown_group_names_the_groups(capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(["ls", "nope"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "hydra/launcher" in err and "'hydra/*'" in err, err


def test_ls_nested_group_end_to_end():
    out = run_cli("ls", "hydra/launcher").stdout
    assert out.startswith("hydra/launcher:\n") and "  slurm_local " in out and "  basic " in out, out


# -- descriptions ---------------------------------------------------------------------------------------------

LONG = (
    "# @package _global_\n"
    "# Linear probe, then fine-tune (LP-FT, Kumar et al. 2022): the head learns on frozen features first, so\n"
    "# fine-tuning starts from a good head and distorts the pretrained features less. A second sentence\n"
    "# that is not shown.\n"
    "#   transferlab train strategy=long\n"
    "name: long\n"
)
SENTENCE = (
    "Linear probe, then fine-tune (LP-FT, Kumar et al. 2022): the head learns on frozen features first, so "
    "fine-tuning starts from a good head and distorts the pretrained features less."
)


@pytest.fixture
def tiny_conf(tmp_path, monkeypatch) -> Path:
    """A conf/ tree with one strategy whose description spans three comment lines."""
    (tmp_path / "train.yaml").write_text("defaults:\n  - _self_\n")
    (tmp_path / "strategy").mkdir()
    (tmp_path / "strategy" / "long.yaml").write_text(LONG)
    (tmp_path / "strategy" / "short.yaml").write_text("# Short. Two sentences.\nname: short\n")
    monkeypatch.setenv(ENV_CONF_DIR, str(tmp_path))
    return tmp_path


def test_description_is_the_whole_first_sentence_on_one_line_into_a_pipe(capsys, monkeypatch, tiny_conf):
    monkeypatch.delenv("COLUMNS", raising=False)
    out = _ls(capsys, "strategy")
    assert out == f"strategy:\n  long   {SENTENCE}\n  short  Short.\n", out


@pytest.mark.parametrize("columns", [60, 100])
def test_description_wraps_at_words_to_the_terminal_width(capsys, monkeypatch, tiny_conf, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    lines = _ls(capsys, "strategy").splitlines()
    long = lines[1 : next(i for i, line in enumerate(lines) if line.startswith("  short"))]
    assert len(long) > 1 and all(len(line) < columns for line in lines), lines
    assert long[0].startswith("  long   ") and all(line.startswith(" " * 9) for line in long[1:]), lines
    assert " ".join(" ".join(long).split()) == f"long {SENTENCE}", long


def _prose(path: Path) -> str:
    """The first paragraph of a config file's header comment (the text the description comes from)."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith("# @package")]
    prose = []
    for line in lines:
        if not re.match(r"# ?\S", line) or (prose and line.startswith("#  ")):
            break
        prose.append(line[1:].strip())
    return " ".join(prose)


def test_shipped_descriptions_end_at_a_sentence_or_paragraph_end(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    out = _ls(capsys)
    for group, names in GROUPS.items():
        section = _section(out, group)
        for name in names:
            shown = re.search(rf"^  {re.escape(name)} +(.*)$", section, re.MULTILINE).group(1)
            prose = _prose(conf_dir() / group / f"{name}.yaml")
            assert shown and prose.startswith(shown), (group, name, shown, prose)
            rest = prose[len(shown) :]
            # the paragraph's end, the next sentence, or a dangling "e.g." whose example is on the next line
            assert rest == "" or re.match(r"\s+[A-Z]", rest) or re.fullmatch(r"[;,]?\s*e\.g\.", rest), (name, rest)
    strategies = _section(out, "strategy")
    # the two descriptions users saw cut off mid-sentence
    assert "from the top down, with discriminative (layer-decayed) learning rates.\n" in strategies
    assert "distorts the pretrained features less.\n" in strategies
