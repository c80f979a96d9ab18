"""``transferlab ls [group] [pattern]``: list config choices from ``conf/`` and registered backbone names."""

from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path

from transferlab.cli.common import HelpFormatter, fail
from transferlab.config.paths import conf_dir

ORDER = 5
USAGE = "ls [group] [pattern]"
SUMMARY = "list config options from conf/ and registered backbone names"

EXAMPLES = """\
examples:
  transferlab ls                        # every config group and its options
  transferlab ls strategy               # strategies with their one-line descriptions
  transferlab ls backbone               # backbone configs and registry names (timm: only on request)
  transferlab ls backbone 'tv:*'        # registry names matching a wildcard
  transferlab ls backbone 'timm:*vit_small*'
  transferlab ls 'str*'                 # groups matching a wildcard
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``ls`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab ls",
        description="List config groups and their options (from conf/) and backbone names (from the registry).",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("group", nargs="?", default="*", help="config group or wildcard (default: all)")
    parser.add_argument("pattern", nargs="?", default="*", help="wildcard over option / backbone names")
    return parser


def _describe(path: Path) -> str:
    """First comment line of a YAML file (skipping Hydra's ``# @package`` line)."""
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("#") and not text.startswith("# @package"):
            return text.lstrip("#").strip()
        if text and not text.startswith("#"):
            break
    return ""


def config_groups(root: Path) -> dict[str, list[Path]]:
    """Config group name → its option files, sorted."""
    return {
        d.name: sorted(d.glob("*.yaml"))
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith((".", "_"))
    }


def main(argv: list[str]) -> None:
    """Entry point of ``transferlab ls``."""
    args = build_parser().parse_args(argv)
    groups = config_groups(conf_dir())
    chosen = [g for g in groups if fnmatch.fnmatchcase(g, args.group)]
    if not chosen:
        fail(f"no config group matches {args.group!r}; groups: {', '.join(groups)}")
    for group in chosen:
        options = [p for p in groups[group] if fnmatch.fnmatchcase(p.stem, args.pattern)]
        if options or args.group != "backbone":
            print(f"{group}:")
        width = max((len(p.stem) for p in options), default=0)
        for path in options:
            print(f"  {path.stem.ljust(width)}  {_describe(path)}")
        if group == "backbone" and args.group != "*":
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
