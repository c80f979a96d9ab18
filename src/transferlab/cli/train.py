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

log = logging.getLogger("transferlab.train")


def train_task(cfg: DictConfig) -> float | None:
    """Run one job; return the ``optimized_metric`` for Hydra sweepers.

    A user error (bad value, missing file) ends a single run with a one-paragraph message and exit status 2.
    In a multirun it is logged and re-raised so Hydra records the job as failed.
    """
    from transferlab.training.engine import run, summary  # heavy imports after Hydra has parsed the CLI

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        metrics = run(cfg, run_dir)
    except TransferlabError as err:
        log.error("%s", err)
        if hydra_cfg.mode == RunMode.RUN:
            print(f"transferlab: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        raise
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
