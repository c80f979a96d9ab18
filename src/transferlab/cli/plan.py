"""``transferlab plan [overrides]``: print the compiled stage plan without training."""

from __future__ import annotations

import argparse
import json

from transferlab.cli.common import HelpFormatter, compose_config, user_errors_exit

EXAMPLES = """\
examples:
  transferlab plan                                   # the default job's plan
  transferlab plan strategy=gradual_unfreeze
  transferlab plan backbone=resnet18 backbone.weights=null strategy.stages.finetune.lr_decay=0.7
  transferlab plan strategy=lp_ft --json > plan.json
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``plan`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab plan",
        description=(
            "Compose the config exactly as 'transferlab train' would, build the backbone and the data's class "
            "count, and print per stage and unfreeze step: epochs, trainable layer groups, trainable/total "
            "parameters and the learning rate of every param group at every epoch. Nothing trains."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for 'transferlab train'")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON, one row per epoch")
    return parser


@user_errors_exit
def main(argv: list[str]) -> None:
    """Entry point of ``transferlab plan``."""
    args = build_parser().parse_args(argv)
    cfg = compose_config(args.overrides)
    from transferlab.strategies import format_plan, plan_to_dict
    from transferlab.training.engine import build_module

    module, data, plan = build_module(cfg)
    name = module.hparams["backbone_name"]
    if args.json:
        print(json.dumps(plan_to_dict(plan, name), indent=2))
    else:
        describe = data.describe() if hasattr(data, "describe") else ""
        print(format_plan(plan, name) + (f"\n\ndata: {describe}" if describe else ""))
