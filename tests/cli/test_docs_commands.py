"""Every ``transferlab train|validate|plan|eval|rank`` command in README.md's and docs/*.md's code blocks works
as written.

Each command line is split as a shell would (``shlex``), its overrides are taken out as the command would take
them (Hydra's own argument parser for ``train``, the command's parser for the others), and every override must
parse with Hydra's override parser. The slow test also composes and checks each job with ``transferlab
validate`` in process, where nothing it needs is missing here (a run dir the reader fills in, absent data, a GPU).
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException

from tests.clitools import REPO
from transferlab.cli.main import load_command

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMANDS = ("train", "validate", "plan", "eval", "rank")
#: rank's own keys (conf/rank.yaml): checked by its tests; the rest of a rank command is a train job's config.
RANK_ONLY = ("candidates=", "ranking.")
# <time>, <run dir>, <pretrain sweep>: text the reader replaces; a whole-word one stands for arguments
PLACEHOLDER = "PLACEHOLDER"
# usage synopses such as "[overrides] [--json]"
SYNOPSIS = re.compile(r"\[[a-z_ -]+\]|\.\.\.|…")
OPERATORS = {"&&", "||", "|", ";", "&"}
REDIRECTIONS = {">", ">>", "<"}


@dataclass(frozen=True)
class DocCommand:
    """One documented command: where it is, which command, its arguments after the shell split them."""

    where: str
    command: str
    args: tuple[str, ...]

    @property
    def overrides(self) -> list[str]:
        """The Hydra overrides, taken out of the arguments as the command itself takes them."""
        args = [a for a in self.args if a != PLACEHOLDER and not SYNOPSIS.fullmatch(a)]
        if self.command == "train":  # a Hydra app: Hydra's own parser separates its flags (-m, --cfg job, …)
            return list(get_args_parser().parse_args(args).overrides)
        return list(load_command(self.command).build_parser().parse_args(args).overrides)


def _code_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The lines of the fenced code blocks, a backslash continuation joined to its line (numbered by the first)."""
    in_block, pending, start = False, "", 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if not in_block:
            continue
        start = start if pending else number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending = ""


def _simple_commands(line: str) -> Iterator[list[str]]:
    """The words of each simple command of a shell line (``a && b | c > file``), comments dropped."""
    line = re.sub(r"^\s*\$\s+", "", line)  # a console transcript's prompt
    line = re.sub(r"<[^<>\n]*>", PLACEHOLDER, line)  # before the split: the shell would read < and > as redirections
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    skip_next = False
    for token in lexer:
        if skip_next:
            skip_next = False
        elif token in OPERATORS:
            yield words
            words = []
        elif token in REDIRECTIONS:
            skip_next = True  # the redirection's file
        else:
            words.append(token)
    yield words


def doc_commands(paths: list[Path] = DOCS) -> list[DocCommand]:
    """Every ``transferlab train|validate|plan|eval|rank`` command of the given Markdown files' code blocks."""
    found = []
    for path in paths:
        name = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
        for number, line in _code_lines(path):
            if not re.search(rf"transferlab\s+({'|'.join(COMMANDS)})\b", line):
                continue
            for words in _simple_commands(line):
                if len(words) >= 2 and words[0] == "transferlab" and words[1] in COMMANDS:
                    found.append(DocCommand(f"{name}:{number}", words[1], tuple(words[2:])))
    return found


DOC_COMMANDS = doc_commands()


def _unparsable(overrides: list[str]) -> list[str]:
    parser = OverridesParser.create()
    bad = []
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException:
            bad.append(override)
    return bad


def test_the_docs_commands_are_found():
    where = {c.where.split(":")[0] for c in DOC_COMMANDS}
    assert len(DOC_COMMANDS) >= 40 and {"README.md", "docs/errors.md", "docs/sweeps.md"} <= where, where
    assert {c.command for c in DOC_COMMANDS} == set(COMMANDS)
    first = next(c for c in DOC_COMMANDS if c.where == "README.md:4")  # after "pip install -e . &&"
    assert first.command == "train" and first.args == ()
    photos = [c for c in DOC_COMMANDS if "data=image_folder" in c.args]
    assert photos and all("data.root='~/photos'" in c.overrides for c in photos), photos


def test_the_parse_check_catches_an_unquoted_tilde(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("```bash\ntransferlab train -m data=image_folder data.root=~/photos seed=0,1  # comment\n```\n")
    (command,) = doc_commands([doc])
    assert command.overrides == ["data=image_folder", "data.root=~/photos", "seed=0,1"]
    assert _unparsable(command.overrides) == ["data.root=~/photos"]


@pytest.mark.parametrize("doc", DOC_COMMANDS, ids=lambda c: c.where)
def test_every_documented_override_parses(doc):
    bad = _unparsable(doc.overrides)
    assert not bad, f"{doc.where}: Hydra cannot parse {bad} (quote the value for Hydra, e.g. \"key='~/x'\")"


# -- composition: transferlab validate in process -------------------------------------------------------------

# Documented on purpose as mistakes (docs/errors.md): validate must name each of them, and nothing else.
DELIBERATE = {
    "data.batch_size=abc": "data.batch_size",
    "strategy.stages.finetune.lr_head=0": "strategy.stages.finetune.lr_head",
    "+trainer.foo=1": "trainer.foo",
}


def _not_here(doc: DocCommand, overrides: list[str]) -> str | None:
    """Why this command's job cannot be checked on this machine, or ``None``."""
    if doc.command == "eval":
        return "eval needs a finished run"
    if any(PLACEHOLDER in a for a in doc.args):
        return "it has a placeholder the reader fills in"
    values = dict(o.split("=", 1) for o in overrides)
    root = values.get("data.root")
    if root is not None and not Path(root.strip("'\"")).expanduser().exists():
        return f"data.root={root} is absent here"
    if values.get("trainer") in ("gpu", "ddp"):
        import torch

        if torch.cuda.device_count() < int(values.get("trainer.devices", 1)):
            return "it needs more CUDA GPUs than this machine has"
    return None


def _jobs(overrides: list[str]) -> list[list[str]]:
    """A sweep's jobs such that every swept value is in one of them (each job's overrides, unswept)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    swept = {p.input_line: list(p.sweep_string_iterator()) for p in parsed if p.is_sweep_override()}
    keys = {p.input_line: p.get_key_element() for p in parsed}
    count = max((len(v) for v in swept.values()), default=1)
    return [
        [f"{keys[o]}={swept[o][min(i, len(swept[o]) - 1)]}" if o in swept else o for o in overrides]
        for i in range(count)
    ]


def _validate(overrides: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            load_command("validate").main(overrides)
            code = 0
        except SystemExit as stop:
            code = int(stop.code or 0)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.slow
def test_every_documented_job_validates():
    checked, skipped, seen = 0, {}, set()
    for doc in DOC_COMMANDS:
        overrides = doc.overrides
        reason = _not_here(doc, overrides)
        if reason:
            skipped[doc.where] = reason
            continue
        if doc.command == "rank":
            overrides = [o for o in overrides if not o.startswith(RANK_ONLY)]
        for job in _jobs(overrides):
            if tuple(job) in seen:
                continue
            seen.add(tuple(job))
            code, output = _validate(job)
            deliberate = [key for o, key in DELIBERATE.items() if o in job]
            if deliberate:
                count = f"{len(deliberate)} problem{'s' if len(deliberate) > 1 else ''} in the config"
                assert code == 2 and count in output, f"{doc.where}: {job}\n{output}"
                assert all(f"  {key}" in output for key in deliberate), f"{doc.where}: {job}\n{output}"
            else:
                assert code == 0 and "config OK" in output, f"{doc.where}: {job}\n{output}"
            checked += 1
    assert checked >= 25, (checked, skipped)
