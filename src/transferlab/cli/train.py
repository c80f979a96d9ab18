"""``transferlab train [overrides]``: the Hydra app that runs one job (or a sweep with ``-m``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from transferlab.errors import TransferlabError
from transferlab.paths import conf_dir
from transferlab.training.failures import clear_failure, write_failure

log = logging.getLogger("transferlab.train")


def train_task(cfg: DictConfig) -> float | None:
    """Run one job; return the ``optimized_metric`` for Hydra sweepers.

    A job that raises leaves ``failure.json`` (error, message, traceback, overrides) in its run dir and the
    traceback in its job log. A single run then ends with a one-paragraph message and exit status 2 for a user
    error (bad value, missing file), or Hydra's report of the exception for anything else. In a grid sweep
    (Hydra's basic sweeper) the failed job returns ``None`` so the sweep goes on and the end-of-sweep summary
    lists it; under other sweepers (Optuna) it re-raises so the sweeper records the trial as failed.
    """
    from transferlab.training.distributed import check_ddp_launch, is_rank_zero
    from transferlab.training.engine import run, summary  # heavy imports after Hydra has parsed the CLI

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        check_ddp_launch(cfg, multirun)
        metrics = run(cfg, run_dir)
    except Exception as err:
        if is_rank_zero():
            write_failure(run_dir, err, list(hydra_cfg.overrides.task))
        if isinstance(err, TransferlabError):
            log.error("%s", err)
        else:
            log.exception("job failed: %s: %s", type(err).__name__, err)
        if not multirun:
            if isinstance(err, TransferlabError):
                print(f"transferlab: error: {err}", file=sys.stderr)
                raise SystemExit(2) from None
            raise
        if "BasicSweeper" in str(hydra_cfg.sweeper.get("_target_", "")):
            print(f"transferlab: job {hydra_cfg.job.num} failed ({type(err).__name__}): {err}", file=sys.stderr)
            return None
        raise
    clear_failure(run_dir)
    if is_rank_zero():
        print(summary(metrics), flush=True)
    key = str(cfg.get("optimized_metric") or "val/acc")
    value = metrics["final"].get(key)
    if value is None:
        value = metrics["stages"][list(metrics["stages"])[-1]].get(key)
    return None if value is None else float(value)


def main(argv: list[str]) -> None:
    """Run the Hydra app with ``argv`` as its command line (everything after ``transferlab train``)."""
    sys.argv = ["transferlab train", *argv]
    app = hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")(train_task)
    app()
