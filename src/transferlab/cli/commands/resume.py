"""``transferlab resume RUN_OR_SWEEP_DIR [overrides]``: finish a killed run or sweep where it stopped."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import yaml

from transferlab.cli.common import HelpFormatter, fail
from transferlab.config.paths import conf_dir
from transferlab.config.run import INTERVAL_KEY
from transferlab.rundir.hydra_files import identity_overrides
from transferlab.rundir.layout import MULTIRUN_FILE, overrides_file

ORDER = 6
USAGE = "resume DIR [overrides]"
SUMMARY = "finish a killed run (or sweep) in its dir from its checkpoints"

# One paragraph, wrapped once the shipped default is filled in.
DESCRIPTION = (
    "A run continues from its newest readable checkpoint: checkpoints/<step>/last.ckpt, rewritten at an epoch "
    "end once {key} seconds ({default}0 = every epoch) of training have passed since the step started or since "
    "its previous write, and always at a step's last epoch and when a run is stopped by SIGINT/SIGTERM. A "
    "resumed run redoes the epochs after that checkpoint (a truncated newest file falls back to the previous "
    "step's) with the overrides it was started with (.hydra/overrides.yaml) and finishes with the metrics and "
    "weights of an uninterrupted run (bit-identical on CPU). A finished run is left exactly as it is. A sweep "
    "dir (multirun.yaml) runs the sweep again in the same dir: finished jobs are skipped, killed jobs continue "
    "from their checkpoints, failed or missing jobs run again."
)

EXAMPLES = """\
examples:
  transferlab resume outputs/train/runs/2026-11-24_07-00-00
  transferlab resume outputs/train/multiruns/2026-11-24_07-00-00
  transferlab resume outputs/train/multiruns/2026-11-24_07-00-00 hydra/launcher=parallel
"""


def default_checkpoint_interval() -> float | None:
    """``callbacks.checkpoint.last_min_interval_s`` of the default job, read from the shipped ``conf/``.

    Read from the files rather than written into the help, so that the help cannot drift from the config.

    Returns:
        The seconds, or ``None`` when the config tree does not say (the help then names only the key).
    """
    group, *keys = INTERVAL_KEY.split(".")
    try:
        root = conf_dir()
        defaults = yaml.safe_load((root / "train.yaml").read_text()).get("defaults", [])
        option = next(d[group] for d in defaults if isinstance(d, dict) and group in d)
        value = yaml.safe_load((root / group / f"{option}.yaml").read_text())
        for key in keys:
            value = value[key]
        return float(value)
    except (OSError, yaml.YAMLError, AttributeError, KeyError, StopIteration, TypeError, ValueError):
        return None  # --help must work even on a broken config tree; the run itself reports the problem


def epilog() -> str:
    """The ``resume --help`` epilog: how checkpoints are written (with the shipped interval), then examples."""
    seconds = default_checkpoint_interval()
    default = "" if seconds is None else f"default {seconds:g}; "
    text = DESCRIPTION.format(key=INTERVAL_KEY, default=default)
    return textwrap.fill(text, width=110, break_long_words=False, break_on_hyphens=False) + "\n\n" + EXAMPLES


def resume_argv(target: Path, extra: list[str]) -> list[str]:
    """The ``transferlab train`` command line that resumes ``target`` (a run dir or a sweep dir).

    Raises:
        SystemExit: (exit 2) when ``target`` is neither a run dir nor a sweep dir.
    """
    if (target / MULTIRUN_FILE).is_file():
        saved = yaml.safe_load((target / MULTIRUN_FILE).read_text())
        overrides = list(saved.get("hydra", {}).get("overrides", {}).get("task", []))
        return ["-m", *overrides, f"hydra.sweep.dir={target}", *extra]
    saved_overrides = overrides_file(target)
    if saved_overrides.is_file():
        overrides = identity_overrides(yaml.safe_load(saved_overrides.read_text()) or [])
        return [*overrides, f"hydra.run.dir={target}", "resume=true", *extra]
    fail(
        f"{target}: not a transferlab run dir (no .hydra/overrides.yaml) or sweep dir (no multirun.yaml). "
        "Fix: pass the dir that 'transferlab train' printed at the end or start (outputs/<task>/runs/<time> or "
        "outputs/<task>/multiruns/<time>)."
    )


def main(argv: list[str]) -> None:
    """Parse ``argv`` and run ``transferlab train`` in resume mode."""
    parser = argparse.ArgumentParser(
        prog="transferlab resume",
        description="Finish a killed run or sweep in its own dir, from its checkpoints.",
        epilog=epilog(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("dir", type=Path, help="a run dir or a sweep dir")
    parser.add_argument("overrides", nargs="*", help="extra overrides (e.g. a launcher); not the run's own keys")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        fail(f"{args.dir}: no such directory. Fix: pass an existing run or sweep dir.")
    from transferlab.cli.commands import train

    print(f"transferlab: resuming {args.dir}", file=sys.stderr, flush=True)
    train.main(resume_argv(args.dir, list(args.overrides)))


if __name__ == "__main__":
    main(sys.argv[1:])
