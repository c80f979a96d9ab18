"""``transferlab``: the command dispatcher (train, validate, plan, eval, ls, resume, report)."""

from __future__ import annotations

import sys

USAGE = """\
usage: transferlab <command> [args]

commands:
  train [overrides]        train one job (Hydra app: -m for sweeps, --cfg job, --help, hydra.* overrides)
  validate [overrides]     check the config without training (no data read, no weights loaded); all problems at once
  plan  [overrides]        print the compiled stage plan (epochs, trainable groups, parameters, LRs); no training
  eval  RUN [overrides]    test a finished run, model.safetensors or .ckpt on its data or another data config
  ls    [group] [pattern]  list config options from conf/ and registered backbone names
  resume DIR [overrides]   finish a killed run (or sweep) in its dir from its checkpoints
  report DIR [DIR...]      aggregate runs and sweeps: tables (CSV, Markdown), plots (PNG), failed/missing jobs

Run 'transferlab <command> --help' for details.

examples:
  transferlab train                                          # efficientnet_lite0 on digits with lp_ft
  transferlab train strategy=gradual_unfreeze data.shots_per_class=20 seed=1
  transferlab train -m strategy=feature_extraction,finetune,lp_ft seed=0,1,2
  transferlab validate data=image_folder data.root=~/photos strategy=gradual_unfreeze
  transferlab plan strategy=gradual_unfreeze
  transferlab eval outputs/train/runs/<time>
  transferlab ls backbone
  transferlab report outputs/train/multiruns/<time>
  tensorboard --logdir outputs/
"""


def main(argv: list[str] | None = None) -> None:
    """Dispatch ``transferlab <command>`` to the subcommand's module."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return
    if args[0] in ("-V", "--version"):
        from transferlab import __version__

        print(f"transferlab {__version__}")
        return
    command, rest = args[0], args[1:]
    if command == "train":
        from transferlab.cli import train

        train.main(rest)
    elif command == "validate":
        from transferlab.cli import validate

        validate.main(rest)
    elif command == "plan":
        from transferlab.cli import plan

        plan.main(rest)
    elif command == "eval":
        from transferlab.cli import eval as eval_cmd

        eval_cmd.main(rest)
    elif command == "ls":
        from transferlab.cli import ls

        ls.main(rest)
    elif command == "resume":
        from transferlab.cli import resume

        resume.main(rest)
    elif command == "report":
        from transferlab.cli import report

        report.main(rest)
    else:
        import difflib

        close = difflib.get_close_matches(command, ["train", "validate", "plan", "eval", "ls", "resume", "report"], n=1)
        hint = f" Did you mean 'transferlab {close[0]}'?" if close else ""
        print(f"transferlab: error: unknown command {command!r}.{hint}\n\n{USAGE}", file=sys.stderr, end="")
        raise SystemExit(2)


if __name__ == "__main__":
    main()
