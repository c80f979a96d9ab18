"""The end of a run: stage rows, the resolved ``config.yaml``, the export, the HParams row and ``metrics.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from transferlab.adapters.apply import merge_adapters
from transferlab.run.assembly import RunParts
from transferlab.run.distributed import is_rank_zero
from transferlab.run.hparams import run_hparams
from transferlab.run.loggers import RunTensorBoardLogger
from transferlab.run.recorder import RunRecorder
from transferlab.run.state import RunState
from transferlab.rundir.export import MODEL_FORMAT, export_model
from transferlab.rundir.layout import CHECKPOINTS_DIR, CONFIG_FILE, METRICS_FILE, MODEL_FILE, TENSORBOARD_DIR
from transferlab.rundir.metrics import write_json_atomic
from transferlab.strategies.spec import StageSpec


def stage_row(
    state: RunState, stage: StageSpec, seconds: float, recorder: RunRecorder, test: dict[str, Any]
) -> dict[str, Any]:
    """A stage's row: epochs, seconds, its best epoch by the monitored validation metric, and its test."""
    rows = state.stage_rows(stage.name)
    row: dict[str, Any] = {"epochs": stage.epochs, "seconds": round(seconds, 2)}
    monitor = recorder.monitor
    if rows:
        scored = [r for r in rows if r.get(monitor) is not None]
        if scored:
            pick = max if recorder.mode == "max" else min
            best = pick(scored, key=lambda r: r[monitor])
        else:
            best = rows[-1]
        row.update({"val/acc": best.get("val/acc"), "val/loss": best.get("val/loss"), "best_epoch": best["epoch"]})
        row["train/loss"] = rows[-1].get("train/loss")
    row.update(test)
    return row


def write_outputs(
    parts: RunParts,
    run_dir: Path,
    state: RunState,
    last_test: dict[str, Any],
    logger: RunTensorBoardLogger | None,
    seconds: float,
) -> dict[str, Any]:
    """Write the run's final files (rank 0 only under DDP) and return the content of ``metrics.json``."""
    config, module, plan = parts.config, parts.module, parts.plan
    rank_zero = is_rank_zero()  # under DDP every rank gets here; one writes
    last = state.stages[plan.strategy.stages[-1].name]
    # test/acc first, then test/loss (+ test/<task>/* of a multi-task run)
    final = {"test/acc": last_test["test/acc"], **last_test}
    final["val/acc"] = last.get("val/acc")
    resolved = dict(config.resolved)
    if rank_zero:
        (run_dir / CONFIG_FILE).write_text(OmegaConf.to_yaml(resolved))
    files = [CONFIG_FILE, METRICS_FILE]
    description = module.task.describe()
    if config.options.export and rank_zero:
        merge_adapters(module)
        module.refresh_groups()
        metadata = {
            "backbone_name": module.hparams["backbone_name"],
            "num_classes": description["num_classes"],
            "class_names": description["class_names"],
            "config": resolved,
            "format": MODEL_FORMAT,
        }
        if "tasks" in description:  # multi-task: the class names of each head (heads.<task>.*)
            metadata["tasks"] = description["tasks"]
        export_model(module, run_dir / MODEL_FILE, metadata)
        files.insert(0, MODEL_FILE)
    if logger is not None:
        files.append(f"{TENSORBOARD_DIR}/")
        logger.step_offset = 0
        logger.log_hyperparams(
            run_hparams(resolved, config.options.seed, plan.strategy.name),
            metrics={f"hparams/{k.replace('/', '_')}": v for k, v in final.items() if v is not None},
        )
        logger.close()
    if (run_dir / CHECKPOINTS_DIR).is_dir():
        files.append(f"{CHECKPOINTS_DIR}/")
    metrics: dict[str, Any] = {
        "run_dir": str(run_dir),
        "backbone": module.hparams["backbone_name"],
        "data": config.data.get("name"),
        "strategy": plan.strategy.name,
        "seed": config.options.seed,
        "num_classes": description["num_classes"],
        "total_params": plan.total_params,
        "seconds": round(seconds, 2),
        "final": final,
        "stages": state.stages,
        "epochs": state.history,
        # per-class accuracy and confusion counts of the final test
        "test_details": module.test_details,
        "files": files,
    }
    if state.ddp_sync:
        ranks = len(next(iter(state.ddp_sync.values())))
        metrics["ddp"] = {"world_size": ranks, "weight_sha256_by_step": state.ddp_sync}
    if rank_zero:
        write_json_atomic(run_dir / METRICS_FILE, metrics)
    return metrics
