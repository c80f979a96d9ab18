"""The end of a run: stage rows, the resolved ``config.yaml``, the export, the HParams row and ``metrics.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from transferlab.adapters.apply import merge_adapters
from transferlab.deploy.preprocess import preprocessing_for
from transferlab.run.assembly import RunParts
from transferlab.run.distributed import is_rank_zero
from transferlab.run.hparams import sweep_columns
from transferlab.run.loggers import RunTensorBoardLogger
from transferlab.run.model_card import render_model_card, write_model_card
from transferlab.run.recorder import RunRecorder
from transferlab.run.selection import selection_record
from transferlab.run.state import RunState
from transferlab.rundir.export import MODEL_FORMAT, export_model
from transferlab.rundir.layout import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    CSV_DIR,
    METRICS_FILE,
    MLFLOW_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    SPLIT_FILE,
    TENSORBOARD_DIR,
)
from transferlab.rundir.metrics import write_json_atomic
from transferlab.rundir.split import write_split
from transferlab.strategies.spec import StageSpec


def stage_row(
    state: RunState, stage: StageSpec, seconds: float, recorder: RunRecorder, test: dict[str, Any]
) -> dict[str, Any]:
    """A stage's row: epochs run (and planned), seconds, its best epoch by the monitored metric, its test.

    ``epochs`` counts the epochs that really ran: fewer than ``planned_epochs`` when a callback stopped a step
    early, which ``early_stop`` then records (epochs, planned, reason per step).
    """
    rows = state.stage_rows(stage.name)
    row: dict[str, Any] = {"epochs": len(rows) or stage.epochs, "planned_epochs": stage.epochs}
    stops = [{"step": label, **{k: v for k, v in s.items() if k != "stage"}}
             for label, s in state.early_stops.items() if s.get("stage") == stage.name]  # fmt: skip
    if stops:
        row["early_stop"] = stops
    row["seconds"] = round(seconds, 2)
    monitor = recorder.monitor
    if rows:
        scored = [r for r in rows if r.get(monitor) is not None]
        if scored:
            pick = max if recorder.mode == "max" else min
            best = pick(scored, key=lambda r: r[monitor])
        else:
            best = rows[-1]
        # every validation metric of the best epoch (val/acc, val/loss, per-task ones): what selection reads
        row.update({k: v for k, v in best.items() if k.startswith("val/")})
        row.setdefault(monitor, None)
        row.setdefault("val/loss", None)
        row["best_epoch"] = best["epoch"]
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
    selection = selection_record(state, state.stages, parts.monitor, plan.strategy.final)
    chosen = state.stages[selection["stage"]]
    # the task's headline first (test/acc, or test/map of a multi-label run), then test/loss and the rest
    task = module.task
    headline = "test/" + task.monitor.split("/", 1)[1]
    final = ({headline: last_test[headline]} if headline in last_test else {}) | last_test
    # the validation metrics of the final weights, so reports choose on validation data (never on test)
    carried_val = chosen.get("carried", {}).get("val") or {k: v for k, v in chosen.items() if k.startswith("val/")}
    final.update(carried_val)
    final.setdefault(task.monitor, None)
    resolved = dict(config.resolved)
    if rank_zero:
        (run_dir / CONFIG_FILE).write_text(OmegaConf.to_yaml(resolved))
    files = [CONFIG_FILE, METRICS_FILE]
    description = module.task.describe()
    preprocessing = None
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
        # what is known only after training: a multi-label head's tuned thresholds (also head.thresholds)
        metadata.update(task.export_metadata())
        # how images became the model's input: what predict applies and export builds into its graph
        preprocessing = preprocessing_for(config.data, module.backbone.data_config).to_dict()
        metadata["preprocessing"] = preprocessing
        export_model(module, run_dir / MODEL_FILE, metadata)
        files.insert(0, MODEL_FILE)
    if logger is not None:
        files.append(f"{TENSORBOARD_DIR}/")
        logger.step_offset = 0
        columns = sweep_columns(resolved, config.options.seed, plan.strategy.name)
        logger.log_hparams_session(
            columns.values,
            columns.swept,
            {f"hparams/{k.replace('/', '_')}": v for k, v in final.items() if v is not None},
        )
        logger.close()
    members = getattr(parts.data, "members", None)
    if members is not None:  # which samples trained, validated and tested: what eval checks against
        if rank_zero:
            write_split(run_dir, config.data.get("name"), config.data.get("seed"), members)
        files.append(SPLIT_FILE)
    if (run_dir / CHECKPOINTS_DIR).is_dir():
        files.append(f"{CHECKPOINTS_DIR}/")
    # the other trackers' files (logger.csv, logger.mlflow), written by run/tracking.py before this point
    files += [name for name in (f"{CSV_DIR}/", MLFLOW_FILE) if (run_dir / name.rstrip("/")).exists()]
    files.append(MODEL_CARD_FILE)
    metrics: dict[str, Any] = {
        "run_dir": str(run_dir),
        "backbone": module.hparams["backbone_name"],
        "data": config.data.get("name"),
        "strategy": plan.strategy.name,
        "seed": config.options.seed,
        "optimized_metric": parts.monitor,  # resolved: the task's own when the config left it null
        "num_classes": description["num_classes"],
        "total_params": plan.total_params,
        "seconds": round(seconds, 2),
        "final": final,
        "selection": selection,
        "strategy_choice": None if plan.strategy.choice is None else dict(plan.strategy.choice),
        "stages": state.stages,
        "epochs": state.history,
        # per-class accuracy and confusion counts of the final test (multi-label: per-label AP, F1, thresholds)
        "test_details": module.test_details,
        "files": files,
    }
    if state.ddp_sync:
        ranks = len(next(iter(state.ddp_sync.values())))
        metrics["ddp"] = {"world_size": ranks, "weight_sha256_by_step": state.ddp_sync}
    if rank_zero:
        # the card first: metrics.json marks the run finished, and a finished run has its card
        card = {
            "class_names": description.get("class_names") or [],
            "split_counts": {k: len(v) for k, v in members.items()} if members else None,
            "preprocessing": preprocessing,
            "has_model": bool(config.options.export),
            "multi_label": bool(description.get("multi_label")),
            "multi_task": "tasks" in description,
            "version": package_version(),
        }
        write_model_card(run_dir, render_model_card(metrics, resolved, card))
        write_json_atomic(run_dir / METRICS_FILE, metrics)
    return metrics


def package_version() -> str:
    """The installed version of transferlab (``unknown`` when run from a source tree without metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("transferlab")
    except PackageNotFoundError:
        return "unknown"
