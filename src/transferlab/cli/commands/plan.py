"""``transferlab plan [overrides]``: print the compiled stage plan without training."""

from __future__ import annotations

import argparse
import json

from transferlab.cli.common import HelpFormatter, compose_config, user_errors_exit

ORDER = 3
USAGE = "plan [overrides]"
SUMMARY = "print the compiled stage plan (epochs, trainable groups, parameters, LRs); no training"

EXAMPLES = """\
examples:
  transferlab plan                                   # the default job's plan
  transferlab plan strategy=gradual_unfreeze
  transferlab plan backbone=resnet18 backbone.weights=null strategy=lp_ft strategy.stages.finetune.lr_decay=0.7
  transferlab plan strategy=lp_ft --json > plan.json
"""

# What plan_to_dict returns; tests/cli/test_plan_json.py checks every key named here against real output.
JSON_HELP = (
    "print the plan as one JSON object (indented, on stdout) instead of the table: strategy, final (best: the "
    "run ends with the stage best on val; last), auto (strategy=auto's choice: {recipe, forced, reasons, inputs, "
    "rule, pin}; null otherwise), stages ([{name, epochs, patience, regularisers}]), backbone, groups "
    "([{name, params}], stem to top), head_params, total_params and epochs, a list with one entry per epoch of "
    "the run ([{epoch, stage, step, trainable_groups, trainable_params, lr: {param group: rate}}]), without the "
    "table's data line"
)


def build_parser() -> argparse.ArgumentParser:
    """The ``plan`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab plan",
        description=(
            "Compose and check the config exactly as 'transferlab train' would, build the backbone (random "
            "weights: only the architecture matters) and the data's class count, and print per stage and "
            "unfreeze step: epochs, trainable layer groups, trainable/total parameters and the learning rate of "
            "every param group at every epoch. Nothing trains."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for 'transferlab train'")
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
    return parser


@user_errors_exit
def main(argv: list[str]) -> None:
    """Entry point of ``transferlab plan``."""
    args = build_parser().parse_args(argv)
    cfg = compose_config(args.overrides)
    from transferlab.run.assembly import assemble
    from transferlab.run.spec import parse_config
    from transferlab.strategies import format_plan, plan_to_dict

    # The architecture with random weights is enough to count parameters (backbone=checkpoint reads its file for
    # the architecture); the data is set up for its class count and split sizes. strategy=auto's quick probe
    # needs the real weights: they are loaded then, so plan shows what train will choose.
    config = parse_config(cfg)
    auto = config.strategy.auto
    parts = assemble(config, load_weights=auto is not None and auto.probe_check, data="fit")
    data, plan, name = parts.data, parts.plan, parts.module.hparams["backbone_name"]
    if args.json:
        print(json.dumps(plan_to_dict(plan, name), indent=2))
    else:
        describe = data.describe() if hasattr(data, "describe") else ""
        print(format_plan(plan, name) + (f"\n\ndata: {describe}" if describe else ""))
