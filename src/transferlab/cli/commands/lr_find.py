"""``transferlab lr-find [overrides] [--stage NAME]``: a learning-rate range test of one stage, with a suggestion."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transferlab.cli.common import HelpFormatter, compose_config, fail, user_errors_exit

if TYPE_CHECKING:
    from transferlab.run.lr_find import RangeTest
    from transferlab.run.spec import RunConfig

ORDER = 3
USAGE = "lr-find [overrides] [--stage NAME]"
SUMMARY = "range-test a stage's learning rate over its real param groups; plot, suggestion, the override to use"

EXAMPLES = """\
examples:
  transferlab lr-find                                   # the default job's first stage (the probe)
  transferlab lr-find --stage finetune                  # runs the probe first, then tests the fine-tune
  transferlab lr-find backbone=resnet18 backbone.weights=null data=image_folder data.root=~/photos --stage finetune
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``lr-find`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab lr-find",
        description=(
            "Compose the job as 'transferlab train' would, bring the model to the start of stage NAME (the "
            "stages before it train for real, as in the run, into <output dir>/before; cached features make a "
            "probe cheap), then sweep the head's learning rate from --min-lr to --max-lr in --steps exponential "
            "steps, one optimizer step per training batch, every other param group keeping its ratio to the head "
            "(lr_backbone, lr_decay). Writes lr_find.png (loss against rate) and lr_find.json, and prints the "
            "suggested lr_head (the steepest descent of the smoothed loss) with the overrides to use. The weights "
            "and random states are put back after the sweep; the same seed gives the same suggestion."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for 'transferlab train'")
    parser.add_argument("--stage", help="the stage to test (default: the first)")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps of the sweep (default 100)")
    parser.add_argument("--min-lr", type=float, default=1e-7, help="the head's first rate (default 1e-7)")
    parser.add_argument("--max-lr", type=float, default=1.0, help="the head's last rate (default 1)")
    parser.add_argument(
        "--output-dir", type=Path, help="where to write (default <paths.output_root>/lr_find/<time>_<stage>)"
    )
    return parser


@user_errors_exit
def main(argv: list[str]) -> None:
    """Entry point of ``transferlab lr-find``."""
    args = build_parser().parse_args(argv)
    if args.steps < 5:
        fail(f"--steps {args.steps}: the sweep needs at least 5 steps. Fix: --steps 100.")
    if not 0 < args.min_lr < args.max_lr:
        fail(f"--min-lr {args.min_lr:g} / --max-lr {args.max_lr:g}: need 0 < min < max. Fix: --min-lr 1e-7 --max-lr 1.")
    cfg = compose_config(args.overrides)
    from transferlab.run.spec import parse_config

    config = parse_config(cfg)
    if config.strategy.auto is not None:  # strategy=auto: test the stages of the recipe the run would choose
        from transferlab.run.assembly import assemble

        config = replace(config, strategy=assemble(config).plan.strategy)
        print(f"lr-find: strategy=auto chose {config.strategy.choice['recipe']}")  # type: ignore[index]
    names = [s.name for s in config.strategy.stages]
    stage = args.stage or names[0]
    if stage not in names:
        fail(f"--stage {stage}: strategy {config.strategy.name} has no such stage; its stages: {', '.join(names)}.")
    index = names.index(stage)
    root = Path(str(config.resolved.get("paths", {}).get("output_root", "outputs")))
    out = args.output_dir or root / "lr_find" / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{stage}"
    if out.exists() and any(out.iterdir()):
        fail(f"--output-dir {out}: exists and is not empty; nothing was written. Fix: another --output-dir.")
    out.mkdir(parents=True, exist_ok=True)
    result, suggestion = _find(config, index, out, args)
    print(f"lr-find: stage {stage}: {result.stopped}; {len(result.lrs)} steps")
    print(f"  suggested lr_head {suggestion['lr_head']:.3g} (steepest descent of the smoothed loss; "
          f"minimum/10: {result.minimum_tenth:.3g})")  # fmt: skip
    print(f"  plot: {out / 'lr_find.png'}")
    print(f"  use: transferlab train {' '.join([*args.overrides, *suggestion['overrides']])}")


def _find(config: RunConfig, index: int, out: Path, args: argparse.Namespace) -> tuple[RangeTest, dict[str, Any]]:
    """Bring the model to the stage's start, run the range test, write the plot and the JSON."""
    import lightning.pytorch as pl
    from safetensors.torch import load_file

    from transferlab.run.assembly import assemble
    from transferlab.run.engine import compute_device, quiet_known_warnings, run
    from transferlab.run.lr_find import plot, range_test
    from transferlab.run.lr_loaders import stage_loader

    quiet_known_warnings()
    strategy = config.strategy
    stage = strategy.stages[index]
    if index > 0:  # the stages before it, for real: the model the stage would start from
        before = replace(strategy, stages=strategy.stages[:index], final="last")
        options = replace(config.options, export=True, test_each_stage=False, resume=False)
        run(replace(config, strategy=before, options=options), out / "before", resume=False)
    pl.seed_everything(config.options.seed, workers=True, verbose=False)
    parts = assemble(config)
    if index > 0:
        parts.module.load_state_dict(load_file(out / "before" / "model.safetensors"), strict=False)
    step = next(s for s in parts.plan.steps if s.stage_index == index)
    device = compute_device(config.trainer.kwargs)
    loader = stage_loader(parts, step, device)
    result = range_test(
        parts.module, step, loader, device, num_steps=args.steps, min_lr=args.min_lr, max_lr=args.max_lr
    )
    plot(result, out / "lr_find.png")
    where = f"{strategy.where}.stages.{stage.name}"
    overrides = [f"{where}.lr_head={result.suggestion:.3g}"]
    if stage.lr_backbone is not None:  # keep the stage's backbone/head ratio
        overrides.append(f"{where}.lr_backbone={result.suggestion * stage.lr_backbone / stage.lr_head:.3g}")
    suggestion = {"lr_head": result.suggestion, "overrides": overrides}
    (out / "lr_find.json").write_text(json.dumps(result.to_dict() | {"suggestion": suggestion}, indent=2) + "\n")
    return result, suggestion
