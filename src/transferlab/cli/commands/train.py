"""``transferlab train [overrides]``: the Hydra app that runs one job (or a sweep with ``-m``)."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from transferlab.config.paths import conf_dir
from transferlab.errors import RunInterrupted, TransferlabError, user_message
from transferlab.rundir.claim import RunDirBusy, RunDirLock
from transferlab.rundir.failures import clear_failure, write_failure
from transferlab.rundir.hydra_files import write_hydra_files
from transferlab.rundir.layout import is_finished

log = logging.getLogger("transferlab.train")

ORDER = 1
SUMMARY = "train one job (Hydra app: -m for sweeps, --cfg job, --help, hydra.* overrides)"
USAGE = "train [overrides]"


def train_task(cfg: DictConfig) -> float | None:
    """Run one job; return the ``optimized_metric`` for Hydra sweepers.

    The job holds its run dir (``.transferlab.lock``) while it runs, and writes ``.hydra/`` there once. A job
    that raises leaves ``failure.json`` (error, message, traceback, overrides) in its run dir and the
    traceback in its job log. A single run then ends with a one-paragraph message and exit status 2 for a user
    error (bad value, missing file), or Hydra's report of the exception for anything else. In a grid sweep
    (Hydra's basic sweeper) the failed job returns ``None`` so the sweep goes on and the end-of-sweep summary
    lists it; under other sweepers (Optuna) it re-raises so the sweeper records the trial as failed. SIGINT or
    SIGTERM ends the job (and a sweep) after the current epoch's checkpoint with status 130 or 143.
    """
    from transferlab.run.distributed import check_ddp_launch, is_rank_zero
    from transferlab.run.engine import run, summary  # heavy imports after Hydra has parsed the CLI

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    rank_zero = is_rank_zero()
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        check_ddp_launch(cfg, multirun)
        # Ranks > 0 of a DDP run share rank 0's dir and write nothing; rank 0 holds the dir for all of them.
        with RunDirLock(run_dir, key) if rank_zero else contextlib.nullcontext():
            if rank_zero:
                write_hydra_files(run_dir, cfg, hydra_cfg, hydra_cfg.overrides.task)  # once: never a finished run's
            # A sweep run again in its dir skips finished jobs and continues killed ones (run/checkpoints.py).
            metrics = run(cfg, run_dir, resume="auto" if multirun and not cfg.get("resume") else None)
    except RunInterrupted as stop:
        target = Path(str(hydra_cfg.sweep.dir)) if multirun else run_dir  # a sweep resumes as a whole
        print(f"transferlab: {stop.message}. Continue with: transferlab resume {target}", file=sys.stderr, flush=True)
        raise SystemExit(stop.exit_code) from None
    except Exception as err:
        busy = isinstance(err, RunDirBusy)  # another process's dir: leave every file of it alone
        if rank_zero and not busy and not is_finished(run_dir):  # never mark a finished run as failed
            write_failure(run_dir, err, list(hydra_cfg.overrides.task))
        if isinstance(err, TransferlabError):
            log.error("%s", user_message(err))
        else:
            log.exception("job failed: %s: %s", type(err).__name__, err)
        if not multirun:
            if isinstance(err, TransferlabError):
                print(f"transferlab: error: {user_message(err)}", file=sys.stderr)
                raise SystemExit(2) from None
            raise
        if "BasicSweeper" in str(hydra_cfg.sweeper.get("_target_", "")):
            message = user_message(err) if isinstance(err, TransferlabError) else err
            print(f"transferlab: job {hydra_cfg.job.num} failed ({type(err).__name__}): {message}", file=sys.stderr)
            return None
        raise
    clear_failure(run_dir)
    if rank_zero:
        print(summary(metrics), flush=True)
    metric = str(metrics.get("optimized_metric") or cfg.get("optimized_metric") or "val/acc")
    value = metrics["final"].get(metric)
    if value is None:
        value = metrics["stages"][list(metrics["stages"])[-1]].get(metric)
    return None if value is None else float(value)


def main(argv: list[str]) -> None:
    """Run the Hydra app with ``argv`` as its command line (everything after ``transferlab train``).

    :func:`~transferlab.cli.preflight.preflight` checks the command line first (composition, values, run dir),
    so that every user error ends with a one-paragraph message and exit status 2 — as every other command's —
    before Hydra writes anything.
    """
    from transferlab.cli.common import fail
    from transferlab.cli.preflight import preflight

    try:
        argv = preflight(argv)
    except TransferlabError as err:
        fail(user_message(err))
    sys.argv = ["transferlab train", *argv]
    app = hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")(train_task)
    app()
