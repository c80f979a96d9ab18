"""``transferlab validate [overrides]``: check a job's config without training, reading data or loading weights."""

from __future__ import annotations

import argparse
import json
import sys

from transferlab.cli.common import EXIT_USER_ERROR, HelpFormatter
from transferlab.config.compose import compose, override_key, override_value
from transferlab.errors import ConfigError

ORDER = 2
USAGE = "validate [overrides]"
SUMMARY = "check the config without training (no data read, no weights loaded); all problems at once"

EXAMPLES = """\
examples:
  transferlab validate                                       # the default job
  transferlab validate backbone=resnet18 data=image_folder "data.root='~/photos'" strategy=gradual_unfreeze
  transferlab validate strategy=lp_ft data.batch_size=abc strategy.stages.finetune.lr_head=0 +trainer.max_epoch=3
  transferlab validate strategy=lp_ft --json > problems.json
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``validate`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab validate",
        description=(
            "Compose the config exactly as 'transferlab train' would and run every check a run makes before it "
            "trains (strategy stages, trainer keys, data options, backbone name and weights value, trainable "
            "layer groups, learning rates, regularizer, feature cache), collecting ALL problems instead of "
            "stopping at the first. Reads no data and loads no weights: a weights file is only checked to exist, "
            "image folders are listed but no image is opened, and the backbone is built with random weights to "
            "learn its layer groups. Exit status 0 when the config is OK, 2 when there is a problem."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for 'transferlab train'")
    parser.add_argument(
        "--json", action="store_true", help='print {"ok": bool, "problems": [{"key", "value", "message"}]}'
    )
    return parser


def _composition_problem(message: str, overrides: list[str]) -> dict[str, object]:
    """The problem record of a composition error: the override it names, else every override."""
    for override in overrides:
        if message.startswith(override) or f"'{override}'" in message:
            return {"key": override_key(override), "value": override_value(override) or None, "message": message}
    return {"key": "overrides", "value": overrides, "message": message}


def _finish(ok: bool, problems: list[dict[str, object]], as_json: bool, summary: str = "", notes: str = "") -> None:
    if as_json:
        print(json.dumps({"ok": ok, "problems": problems}, indent=2, default=str))
    elif ok:
        print("config OK")
        print(summary)
        if notes:
            print(notes)
    else:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        lines = "\n".join(f"  {p['message']}" for p in problems)
        print(f"transferlab: error: {count} in the config (nothing was run):\n{lines}", file=sys.stderr)
    if not ok:
        raise SystemExit(EXIT_USER_ERROR)


def main(argv: list[str]) -> None:
    """Entry point of ``transferlab validate``."""
    args = build_parser().parse_args(argv)
    try:
        cfg = compose(args.overrides)
    except ConfigError as err:
        _finish(False, [_composition_problem(str(err), args.overrides)], args.json)
        return
    from transferlab.run.validation import validate_config

    report = validate_config(cfg)
    summary = "  " + " · ".join(f"{part} {text}" for part, text in report.summary.items())
    notes = "\n".join(f"  note: {n}" for n in report.notes)
    _finish(report.ok, report.to_dict()["problems"], args.json, summary, notes)
