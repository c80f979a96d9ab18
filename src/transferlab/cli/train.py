"""``transferlab train [overrides]``: the Hydra app that runs one job (or a sweep with ``-m``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from transferlab.errors import TransferlabError, user_message
from transferlab.paths import conf_dir
from transferlab.training.failures import clear_failure, write_failure
from transferlab.training.results import METRICS_FILE

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
        # A sweep run again in its dir skips finished jobs and continues killed ones (training/resume.py).
        metrics = run(cfg, run_dir, resume="auto" if multirun and not cfg.get("resume") else None)
    except Exception as err:
        if is_rank_zero() and not (run_dir / METRICS_FILE).exists():  # never mark a finished run as failed
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
    if is_rank_zero():
        print(summary(metrics), flush=True)
    key = str(cfg.get("optimized_metric") or "val/acc")
    value = metrics["final"].get(key)
    if value is None:
        value = metrics["stages"][list(metrics["stages"])[-1]].get(key)
    return None if value is None else float(value)


def refuse_finished_run_dir(argv: list[str]) -> None:
    """Stop before Hydra writes ``.hydra/`` into an explicit ``hydra.run.dir`` that holds a finished run.

    Hydra saves the new job's config files before the task starts, so the engine's own check would come
    after they replaced the finished run's. Timestamped default dirs never collide; sweeps skip finished jobs.
    """
    if "-m" in argv or "--multirun" in argv or any(a.strip().lower() == "resume=true" for a in argv):
        return
    for arg in argv:
        if arg.startswith("hydra.run.dir="):
            run_dir = Path(arg.split("=", 1)[1].strip("'\""))
            if (run_dir / METRICS_FILE).is_file():
                print(
                    f"transferlab: error: hydra.run.dir={run_dir}: this dir already holds a finished run "
                    f"({METRICS_FILE}); a new run would overwrite its checkpoints and results. Fix: choose another "
                    "dir (or leave hydra.run.dir to its timestamped default), or 'transferlab resume <dir>' to keep "
                    "it.",
                    file=sys.stderr,
                )
                raise SystemExit(2)


def main(argv: list[str]) -> None:
    """Run the Hydra app with ``argv`` as its command line (everything after ``transferlab train``).

    The overrides are composed once first, so that an unknown group option or key, or an override Hydra cannot
    parse, ends with a one-paragraph message and exit status 2 (as every other user error) instead of Hydra's
    multi-line report and status 1.
    """
    from transferlab.cli.common import fail
    from transferlab.cli.composition import check_train_overrides

    refuse_finished_run_dir(argv)
    try:
        check_train_overrides(argv)
    except TransferlabError as err:
        fail(str(err))
    sys.argv = ["transferlab train", *argv]
    app = hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")(train_task)
    app()
