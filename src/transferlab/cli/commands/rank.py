"""``transferlab rank [overrides]``: rank candidate backbones by transferability estimators, in seconds."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path
from typing import Any

from transferlab.cli.common import HelpFormatter, compose_config, fail, user_errors_exit

ORDER = 3
USAGE = "rank [overrides]"
SUMMARY = "rank candidate backbones on your data by LogME, LEEP, NCE, H-score, GBC (frozen features, no training)"

EXAMPLES = """\
examples:
  transferlab rank 'candidates=[efficientnet_lite0,efficientnet_lite1,efficientnet_lite2,efficientnet_lite0@null]'
  transferlab rank backbone=efficientnet_lite0,efficientnet_lite2 data=image_folder data.root=~/photos
  transferlab rank 'candidates=[efficientnet_lite0,checkpoint:outputs/train/runs/<time>]' \
      'ranking.estimators=[logme,leep]'
  transferlab train strategy=feature_extraction      # reuses the features the ranking cached
"""

DESCRIPTION = (
    "Compose the config as 'transferlab train' would (the same data, trainer and feature_cache overrides) plus "
    "'candidates' and 'ranking.*' (conf/rank.yaml). For each candidate: build the pretrained backbone and the "
    "data with its preprocessing, compute the frozen features of the training split through the feature cache (a "
    "later feature-extraction or LP-FT run with the same settings reads them and computes only val and test), "
    "score them with each estimator, and print one line. Then print the table (score and rank per estimator, "
    "seconds, and the test "
    "accuracy of finished runs of that candidate on the same data under ranking.runs) and write ranking.csv, "
    "ranking.md and ranking.json. A candidate that cannot be scored is listed with its error and the command "
    "exits with status 1; bad candidates, estimators or data stop it before any feature is computed (status 2)."
)


def build_parser() -> argparse.ArgumentParser:
    """The ``rank`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab rank", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=HelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for 'transferlab train', and candidates=[…]")
    parser.add_argument("-m", "--multirun", action="store_true", help="accepted: backbone=a,b,c lists candidates")
    return parser


def split_backbone_sweep(overrides: list[str]) -> tuple[list[str], list[str] | None]:
    """``backbone=a,b,c`` (a sweep, as for ``train -m``) taken out as candidates ``[a, b, c]``."""
    rest, swept = [], None
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key == "backbone" and "," in value and not value.startswith(("[", "'", '"')):
            swept = [v.strip() for v in value.split(",") if v.strip()]
        else:
            rest.append(override)
    return rest, swept


def _check_out(configured: str | None) -> None:
    """Refuse a ``ranking.out`` that holds anything, before any work (nothing is ever written over)."""
    out = None if configured is None else Path(configured).expanduser()
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"ranking.out={out}: exists and is not an empty dir; nothing was written. Fix: another ranking.out.")


def _claim_out(configured: str | None, output_root: str, started: str) -> Path:
    """The output dir, created when there is something to write (a stopped ranking leaves no empty dir)."""
    from transferlab.rundir.claim import claim_new_dir, ensure_writable_dir

    if configured is None:
        return claim_new_dir(Path(output_root) / "rank" / started, "ranking.out")
    _check_out(configured)
    return ensure_writable_dir(Path(configured).expanduser(), "ranking.out")


@user_errors_exit
def main(argv: list[str]) -> None:
    """Entry point of ``transferlab rank``."""
    args = build_parser().parse_args(argv)
    overrides, swept = split_backbone_sweep(list(args.overrides))
    if swept is not None and any(o.startswith("candidates=") for o in overrides):
        fail("backbone=a,b,… and candidates=[…] both list candidates. Fix: use one of them.")
    if swept is not None:
        overrides.append("candidates=[" + ",".join(swept) + "]")
    from omegaconf import OmegaConf

    cfg = compose_config(overrides, config_name="rank")
    raw: dict[str, Any] = OmegaConf.to_container(cfg, resolve=False)  # type: ignore[assignment]
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    candidates_raw, ranking_raw = resolved.pop("candidates", None), resolved.pop("ranking", None)
    raw.pop("candidates", None)
    raw.pop("ranking", None)
    run(OmegaConf.create(raw), candidates_raw, ranking_raw, "transferlab rank " + shlex.join(args.overrides))


def run(cfg: Any, candidates_raw: Any, ranking_raw: Any, command: str) -> None:
    """Check everything, rank, print and write (see the module docstring)."""
    from transferlab.report.ranking import display_rows, finetuned, text_table, write_outputs
    from transferlab.run.candidates import parse_candidates
    from transferlab.run.engine import compute_device, quiet_known_warnings
    from transferlab.run.rank import parse_ranking, rank_candidates, without_augmentation
    from transferlab.run.spec import parse_config

    quiet_known_warnings()
    config = parse_config(cfg)
    options = parse_ranking(ranking_raw)
    candidates = parse_candidates(candidates_raw, config.backbone)
    check_sources(candidates, options.estimators)
    _, augmented = without_augmentation(config)
    notes = ["data.augment was on: ranking scores un-augmented features"] if augmented else []
    _check_out(options.out)
    started = time.strftime("%Y-%m-%d_%H-%M-%S")
    names = ", ".join(options.estimators)
    print(f"rank: {len(candidates)} candidate(s), estimators {names}; data={config.data.get('name')}")
    device = compute_device(config.trainer.kwargs)
    rows = rank_candidates(config, candidates, options, device)
    tuned = finetuned(rows, config.data, Path(options.runs).expanduser() if options.runs else None)
    header, lines = display_rows(rows, options.estimators, tuned)
    print("\n" + text_table(header, lines))
    for row in rows:
        for estimator, reason in row.skipped.items():
            print(f"  {row.candidate.label}: {estimator} skipped: {reason}")
    out = _claim_out(options.out, str(config.resolved.get("paths", {}).get("output_root", "outputs")), started)
    paths = write_outputs(out, rows, options.estimators, tuned, command, notes)
    print(f"\nwrote {', '.join(str(p) for p in paths)}")
    failed = [r for r in rows if r.error]
    if failed:
        detail = "; ".join(f"{r.candidate.label}: {r.error}" for r in failed)
        print(
            f"transferlab: error: {len(failed)} of {len(rows)} candidate(s) could not be scored: {detail}. Fix: check "
            "that the weights match their architecture and that data.image_size suits it; the others are ranked "
            "above.",
            file=__import__("sys").stderr,
        )
        raise SystemExit(1)


def check_sources(candidates: list[Any], estimators: tuple[str, ...]) -> None:
    """When every estimator reads a source classifier, refuse candidates without one before any feature pass."""
    from transferlab.ranking import ESTIMATORS
    from transferlab.run.source_head import source_head

    if not all(ESTIMATORS[e].needs_source for e in estimators):
        return  # the others still score them; the table says which were skipped and why
    for index, candidate in enumerate(candidates):
        head = source_head(candidate.backbone, None)
        if not head.available:
            fail(
                f"candidates[{index}]={candidate.label!r}: ranking.estimators={list(estimators)} all need the "
                f"source classifier, and {head.origin}. Fix: add a feature-based estimator "
                f"('ranking.estimators=[logme,{','.join(estimators)}]'), or rank weights that keep their head "
                "(a transferlab export, the packaged ImageNet weights)."
            )
