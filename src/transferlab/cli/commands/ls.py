"""``transferlab ls [group] [pattern]``: list config choices from ``conf/``, Hydra's own, and backbone names."""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

from transferlab.cli.common import HelpFormatter, fail
from transferlab.config.paths import conf_dir

ORDER = 5
USAGE = "ls [group] [pattern]"
SUMMARY = "list config options from conf/ and registered backbone names"

EXAMPLES = """\
examples:
  transferlab ls                        # every config group of conf/ and its options
  transferlab ls strategy               # strategies with their one-sentence descriptions
  transferlab ls hydra/launcher         # nested groups by their path (with Hydra's own options)
  transferlab ls 'hydra/*'              # Hydra's own groups too (hydra/sweeper, hydra/job_logging, ...)
  transferlab ls backbone               # backbone configs and registry names (timm: only on request)
  transferlab ls backbone 'tv:*'        # registry names matching a wildcard
  transferlab ls backbone 'timm:*vit_small*'
  transferlab ls 'str*'                 # groups matching a wildcard
"""

HYDRA = "hydra/"
# A sentence ends at . ! or ? before a capital letter; these abbreviations do not end one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_ABBREVIATIONS = ("e.g.", "i.e.", "cf.", "al.", "vs.")
# A description whose example continues on an indented comment line ends in a dangling "e.g.".
_DANGLING_EXAMPLE = re.compile(r"[;,]?\s*e\.g\.$")


def build_parser() -> argparse.ArgumentParser:
    """The ``ls`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab ls",
        description=(
            "List config groups and their options (from conf/, nested groups by their path such as "
            "hydra/launcher; Hydra's own options of hydra/ groups too) and backbone names (from the registry). "
            "Descriptions are wrapped to the terminal's width, and printed one per line into a pipe or file."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "group", nargs="?", help="config group or wildcard (default: every group of conf/; 'hydra/*': Hydra's own)"
    )
    parser.add_argument("pattern", nargs="?", default="*", help="wildcard over option / backbone names")
    return parser


def describe(path: Path) -> str:
    """What ``ls`` shows for an option file: the first sentence of its header comment, whole.

    The header's first paragraph (Hydra's ``# @package`` line skipped) may span several comment lines; it ends
    at the first indented comment line (an example command), empty comment line or YAML line. A sentence ends
    at ``.``, ``!`` or ``?`` before a capital letter, not after an abbreviation such as ``e.g.``.

    Args:
        path: A config option file.

    Returns:
        The sentence (the whole paragraph when it is one sentence), or ``""`` when the file has no header.
    """
    prose: list[str] = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("# @package"):
            continue
        body = text[1:] if text.startswith("#") else ""
        if not body.strip() or (body.startswith("  ") and prose):
            break
        prose.append(body.strip())
    paragraph = " ".join(prose)
    for end in _SENTENCE_END.finditer(paragraph):
        if not paragraph[: end.start()].endswith(_ABBREVIATIONS):
            return paragraph[: end.start()]
    return _DANGLING_EXAMPLE.sub("", paragraph)


def config_groups(root: Path) -> dict[str, list[Path]]:
    """Config group (its path under ``root``, e.g. ``hydra/launcher``) → its option files, sorted."""
    groups = {}
    for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
        relative = folder.relative_to(root)
        options = sorted(folder.glob("*.yaml"))
        if options and not any(part.startswith((".", "_")) for part in relative.parts):
            groups[relative.as_posix()] = options
    return groups


def hydra_groups() -> dict[str, dict[str, str]]:
    """Every config group under ``hydra/`` as Hydra sees it → {option: where it comes from}.

    Includes the groups of Hydra itself and of the installed plugins (``hydra/launcher=joblib``,
    ``hydra/sweeper=optuna``, ``hydra/sweeper/sampler=tpe``), which have no file in ``conf/``.
    """
    from hydra import initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra
    from hydra.plugins.config_source import ConfigLoadError

    def origin(config: str) -> str:
        try:
            provider = ConfigStore.instance().load(f"{config}.yaml").provider  # plugins register here
        except ConfigLoadError:
            provider = "hydra"  # a file of Hydra's own package
        return "built into Hydra" if provider == "hydra" else f"from the Hydra plugin {provider}"

    found: dict[str, dict[str, str]] = {}
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        pending = [HYDRA.rstrip("/")]
        while pending:
            parent = pending.pop()
            for child in loader.list_groups(parent):
                group = f"{parent}/{child}"
                found[group] = {o: origin(f"{group}/{o}") for o in loader.get_group_options(group)}
                pending.append(group)
    return dict(sorted(found.items()))


def _width() -> int | None:
    """Columns to wrap descriptions to: the terminal's (or ``$COLUMNS``); ``None`` into a pipe or file."""
    if "COLUMNS" in os.environ or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None  # one line per option stays greppable


def _print_options(rows: list[tuple[str, str]]) -> None:
    """``  name  description`` rows, the descriptions wrapped at word boundaries under their own column."""
    name_width = max((len(name) for name, _ in rows), default=0)
    indent = " " * (2 + name_width + 2)
    columns = _width()
    for name, text in rows:
        first = f"  {name.ljust(name_width)}  "
        if columns is None or not text:
            print(f"{first}{text}".rstrip())
            continue
        # at least 40 columns of text, so a very narrow terminal gets long lines rather than a word per line
        width = max(columns - 1, len(indent) + 40)
        print(
            textwrap.fill(
                text,
                width=width,
                initial_indent=first,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )


def main(argv: list[str]) -> None:
    """Entry point of ``transferlab ls``."""
    args = build_parser().parse_args(argv)
    groups = config_groups(conf_dir())
    pattern = "*" if args.group is None else args.group
    chosen = [g for g in groups if fnmatch.fnmatchcase(g, pattern)]
    extra: dict[str, dict[str, str]] = {}
    # Loading Hydra and its plugins takes a moment: only when a hydra/ group is asked for or listed.
    if pattern.startswith(HYDRA) or any(g.startswith(HYDRA) for g in chosen):
        extra = hydra_groups()
        if args.group is not None:
            chosen += [g for g in extra if g not in groups and fnmatch.fnmatchcase(g, pattern)]
    if not chosen:
        fail(
            f"no config group matches {pattern!r}; groups: {', '.join(groups)}. "
            "Hydra's own groups (hydra/sweeper, hydra/job_logging, ...): transferlab ls 'hydra/*'"
        )
    for group in sorted(chosen):
        files = {p.stem: describe(p) for p in groups.get(group, [])}
        hydra_only = {o: text for o, text in extra.get(group, {}).items() if o not in files}
        options = {**files, **hydra_only}
        rows = [(name, options[name]) for name in sorted(options) if fnmatch.fnmatchcase(name, args.pattern)]
        if rows or group != "backbone":
            print(f"{group}:")
        _print_options(rows)
        if group == "backbone" and args.group not in (None, "*"):
            _list_registry(args.pattern)


def _list_registry(pattern: str) -> None:
    from transferlab.backbones import list_backbones

    names = list_backbones(pattern)
    if pattern == "*":
        names = [n for n in names if not n.startswith("timm:")]
        footer = (
            "  (any timm model: backbone=timm backbone.name=timm:<model>; "
            "list them with 'transferlab ls backbone timm:*')"
        )
    else:
        footer = ""
    print("backbone names (backbone.name=...):")
    for name in names:
        print(f"  {name}")
    if not names:
        print(f"  none match {pattern!r}")
    if footer:
        print(footer)
