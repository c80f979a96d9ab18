"""``transferlab``: the command dispatcher. The commands are the modules of :mod:`transferlab.cli.commands`.

Usage, dispatch and did-you-mean all come from that one package: each module there declares its ``USAGE``,
``SUMMARY`` and ``ORDER`` and has a ``main(argv)``. Only the chosen command's module is imported to run it.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import sys
from types import ModuleType

import transferlab.cli.commands as commands_package

EXAMPLES = """\
examples:
  transferlab train                                          # efficientnet_lite0 on digits with lp_ft
  transferlab train strategy=gradual_unfreeze data.shots_per_class=20 seed=1
  transferlab train -m strategy=feature_extraction,finetune,lp_ft seed=0,1,2
  transferlab validate data=image_folder "data.root='~/photos'" strategy=gradual_unfreeze
  transferlab plan strategy=gradual_unfreeze
  transferlab rank 'candidates=[efficientnet_lite0,efficientnet_lite2,small_cnn]'
  transferlab eval outputs/train/runs/<time>
  transferlab ls backbone
  transferlab report outputs/train/multiruns/<time>
  tensorboard --logdir outputs/
"""


def command_names() -> list[str]:
    """Every command, by module name with ``-`` for ``_`` (``lr_find.py`` is ``lr-find``; not imported)."""
    modules = pkgutil.iter_modules(commands_package.__path__)
    return sorted(m.name.replace("_", "-") for m in modules if not m.name.startswith("_"))


def load_command(name: str) -> ModuleType:
    """The module of command ``name``."""
    return importlib.import_module(f"{commands_package.__name__}.{name.replace('-', '_')}")


def usage() -> str:
    """The text of ``transferlab --help``: every command's synopsis and summary, then examples."""
    modules = sorted((load_command(n) for n in command_names()), key=lambda m: (getattr(m, "ORDER", 99), m.__name__))
    rows = [(m.USAGE, m.SUMMARY) for m in modules]
    width = max(len(u) for u, _ in rows)
    lines = [f"  {u.ljust(width)}  {s}" for u, s in rows]
    return (
        "usage: transferlab <command> [args]\n\ncommands:\n"
        + "\n".join(lines)
        + "\n\nRun 'transferlab <command> --help' for details.\n\n"
        + EXAMPLES
    )


def main(argv: list[str] | None = None) -> None:
    """Dispatch ``transferlab <command>`` to the command's module."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(), end="")
        return
    if args[0] in ("-V", "--version"):
        from transferlab import __version__

        print(f"transferlab {__version__}")
        return
    command, rest = args[0], args[1:]
    names = command_names()
    if command not in names:
        close = difflib.get_close_matches(command, names, n=1)
        hint = f" Did you mean 'transferlab {close[0]}'?" if close else ""
        print(f"transferlab: error: unknown command {command!r}.{hint}\n\n{usage()}", file=sys.stderr, end="")
        raise SystemExit(2)
    try:
        load_command(command).main(rest)
    except BrokenPipeError:  # `transferlab plan --json | head`: the reader left; stop quietly, as cat does
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own recipe: no flush error
        raise SystemExit(0) from None


if __name__ == "__main__":
    main()
