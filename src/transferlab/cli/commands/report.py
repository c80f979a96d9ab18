"""``transferlab report DIR [DIR ...]``: tables, plots and failed or missing jobs of finished runs and sweeps."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from transferlab.cli.common import HelpFormatter, user_errors_exit

ORDER = 7
USAGE = "report DIR [DIR...]"
SUMMARY = "aggregate runs and sweeps: tables (CSV, Markdown), plots (PNG), failed/missing jobs"

EXAMPLES = """\
examples:
  transferlab report outputs/train/multiruns/2026-11-24_10-00-00      # one sweep → <dir>/report/
  transferlab report outputs/digits_transfer --out reports/digits     # every sweep below a dir
  transferlab report outputs/train/runs/2026-11-24_10-00-00           # a single run: one row
  transferlab report SWEEP --metric test/loss                         # headline metric (plot, beside the best)
  transferlab report SWEEP --select-by val/loss                       # choose the best group on val/loss
  transferlab report SWEEP --group-by strategy                        # pool everything else per strategy
  transferlab report SWEEP --over seed,data.seed                      # two replicate keys
  transferlab report SWEEP --strict && echo "all jobs finished"       # exit 1 if any job failed or is missing
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``report`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab report",
        description=(
            "Find every job under the given run or sweep dirs and aggregate their metrics.json: jobs.csv (one "
            "row per job), summary.csv and report.md (mean ± sample std over seeds, grouped by the swept "
            "override keys), summary.png and curves.png, and a list of failed, unfinished and missing jobs with "
            "their error. The best group is chosen on a validation metric (the runs' optimized_metric), never on "
            "test data; its test score is shown beside it. Exits 0 even when jobs failed (unless --strict)."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="run dirs, sweep dirs, or dirs above them")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output dir (default: <first dir>/report)")
    parser.add_argument(
        "--metric",
        default="test/acc",
        metavar="NAME",
        help=(
            "headline metric of summary.png, shown beside the best group (default test/acc, or test/<selection "
            "metric> for runs without it, e.g. test/map; never used to choose)"
        ),
    )
    parser.add_argument(
        "--select-by",
        metavar="NAME",
        help="validation metric that chooses the best group (default: the runs' optimized_metric, e.g. val/acc); "
        "test metrics are refused",
    )
    parser.add_argument(
        "--curve-metric",
        default="val/acc",
        metavar="NAME",
        help="per-epoch metric of curves.png (default val/acc, or the selection metric for runs without it)",
    )
    parser.add_argument(
        "--group-by",
        type=_keys,
        metavar="KEYS",
        help="comma-separated keys to group by (default: the swept keys less --over)",
    )
    parser.add_argument(
        "--over",
        type=_keys,
        default=["seed"],
        metavar="KEYS",
        help="comma-separated replicate keys pooled into mean ± std (seed)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write the tables and report.md only")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any job failed, is unfinished or missing")
    return parser


def _keys(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


@user_errors_exit
def main(argv: list[str]) -> None:
    """Entry point of ``transferlab report``."""
    args = build_parser().parse_args(argv)
    from transferlab.report import ReportOptions, build_report
    from transferlab.report.render import counts_line

    options = ReportOptions(
        dirs=args.dirs,
        out=args.out,
        metric=args.metric,
        select_by=args.select_by,
        curve_metric=args.curve_metric,
        group_by=args.group_by,
        over=args.over,
        plots=not args.no_plots,
        command=shlex.join(["transferlab", "report", *argv]),
    )
    report = build_report(options)
    print(f"transferlab report: {counts_line(report.collection)}")
    if report.table:
        print(f"\n{report.table}\n")
    if report.best:
        print(report.best)
    for sweep in report.collection.sweeps:
        if sweep.optuna and "best_params" in sweep.optuna:
            print(f"optuna {sweep.dir}: best {sweep.optuna.get('best_value')} at {sweep.optuna['best_params']}")
    if report.problems:
        print(f"\n{len(report.problems)} job(s) failed, unfinished or missing:")
        for line in report.problems:
            print(f"  {line}")
    print("\nwritten:")
    for path in report.files:
        print(f"  {path}")
    if args.strict and report.problems:
        print(
            f"transferlab report: --strict: {len(report.problems)} job(s) failed, unfinished or missing",
            file=sys.stderr,
        )
        raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
