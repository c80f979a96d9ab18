"""The engine: one run, top to bottom — build, plan, fit each step, carry weights, test, export.

Reads top to bottom like a recipe. The config is turned into typed values here, at the edge; nothing below
reads ``cfg.a.b.c``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from transferlab.adapters import apply_adapter, merge_adapters
from transferlab.backbones import create_backbone, read_weights_file
from transferlab.backbones.weight_files import checkpoint_backbone_name
from transferlab.data import build_data
from transferlab.data.base import TransferDataModule
from transferlab.data.multitask import MULTITASK
from transferlab.errors import ConfigError
from transferlab.regularizers import build_regularizer
from transferlab.strategies import compile_plan, format_plan, parse_strategy
from transferlab.strategies.plan import Plan, StepPlan
from transferlab.training.distributed import (
    check_ranks_in_sync,
    is_rank_zero,
    is_script_launched_ddp,
    use_job_command_for_ranks,
)
from transferlab.training.export import MODEL_FILE, export_model
from transferlab.training.feature_cache import FeatureCache, cache_blocker, cached_loaders
from transferlab.training.loggers import RunTensorBoardLogger
from transferlab.training.module import TransferModule
from transferlab.training.multitask import build_multitask
from transferlab.training.progress import StageProgressBar
from transferlab.training.reinit import reinitialize_groups
from transferlab.training.results import METRICS_FILE, format_summary, write_json_atomic
from transferlab.training.resume import (
    STATE_KEY,
    LastCheckpoint,
    ResumePoint,
    find_resume_point,
    last_checkpoint_interval,
)
from transferlab.training.speed import (
    apply_speed_settings,
    check_speed_settings,
    skip_failing_nvml_probe,
    split_speed_settings,
)
from transferlab.training.trainer import build_trainer, trainer_kwargs

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"


def _container(cfg: DictConfig, key: str) -> dict[str, Any]:
    node = cfg.get(key)
    return {} if node is None else OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]


def build_module(cfg: DictConfig) -> tuple[TransferModule, pl.LightningDataModule, Plan]:
    """Build backbone, data, module and plan from a composed config (no training).

    Args:
        cfg: The composed config.

    Returns:
        The module (head initialised), the data module (set up for fitting) and the compiled plan.

    Raises:
        ConfigError: On bad strategy or trainer values, before any weights load.
    """
    strategy = parse_strategy(_container(cfg, "strategy"))
    backbone_cfg = _container(cfg, "backbone")
    name, weights = backbone_cfg.get("name"), backbone_cfg.get("weights")
    if strategy.init == "random":
        if name == "checkpoint":  # the baseline of a transfer sweep: the checkpoint's architecture, fresh
            name = checkpoint_backbone_name(read_weights_file(weights))
        weights = None  # the baseline: same architecture, random initialisation
    backbone = create_backbone(str(name), weights=weights)
    if strategy.shared_groups is not None:  # K beyond the group count is rejected by compile_plan below
        new = reinitialize_groups(backbone, strategy.shared_groups)
        log.info("shared the first %d layer groups; re-initialised %s", strategy.shared_groups, ", ".join(new))
    backbone = apply_adapter(backbone, strategy.adapter)
    data_cfg = _container(cfg, "data")
    if data_cfg.get("name") == MULTITASK:
        if _container(cfg, "regularizer").get("name", "none") != "none":
            raise ConfigError("regularizer: not supported with data=multitask (no single head). Fix: regularizer=none.")
        config = OmegaConf.to_container(cfg, resolve=True)
        # Multi-task hard sharing: the same trunk under one head per task (training/multitask.py).
        return build_multitask(data_cfg, backbone, strategy, {"backbone_name": backbone.name, "config": config})
    data = build_data(data_cfg, backbone.data_config)
    data.setup("fit")
    hparams = {
        "backbone_name": backbone.name,
        "class_names": list(data.class_names),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    module = TransferModule(backbone, data.num_classes, strategy.head_dropout, hparams=hparams)
    module.regularizer = build_regularizer(_container(cfg, "regularizer"), module, backbone_cfg)
    head_params = sum(p.numel() for p in module.head.parameters())
    plan = compile_plan(strategy, module.groups.infos(), head_params)
    return module, data, plan


def _step_callbacks(cfg: DictConfig, step: StepPlan, run_dir: Path, num_stages: int) -> list[pl.Callback]:
    ckpt = _container(cfg, "callbacks").get("checkpoint") or {}
    callbacks: list[pl.Callback] = []
    step_dir = run_dir / "checkpoints" / step.label
    if ckpt.get("save_top_k", 0):
        callbacks.append(
            ModelCheckpoint(
                dirpath=step_dir,
                filename="best-epoch{epoch:02d}",
                auto_insert_metric_name=False,
                monitor="val/acc",
                mode="max",
                save_top_k=int(ckpt.get("save_top_k", 1)),
                save_last=False,  # LastCheckpoint writes last.ckpt every epoch
                save_on_train_epoch_end=True,
            )
        )
    if ckpt.get("save_last", False):
        interval = last_checkpoint_interval(ckpt)
        callbacks.append(LastCheckpoint(step_dir, interval))  # what 'transferlab resume' continues from
    trainer_cfg = _container(cfg, "trainer")
    if trainer_cfg.get("enable_progress_bar", True):
        refresh = int((_container(cfg, "callbacks").get("progress_bar") or {}).get("refresh_rate", 1))
        callbacks.append(StageProgressBar(num_stages, refresh_rate=refresh))
    extra = cfg.callbacks.get("extra") if cfg.get("callbacks") else None
    for key, spec in (extra or {}).items():
        if spec is not None:
            callbacks.append(instantiate(spec, _convert_="all") if "_target_" in spec else _bad_callback(key))
    return callbacks


def _bad_callback(key: str) -> pl.Callback:
    raise ConfigError(
        f"callbacks.extra.{key}: needs a '_target_' naming a Lightning callback class, e.g. "
        f"+callbacks.extra.{key}._target_=lightning.pytorch.callbacks.EarlyStopping"
    )


def _stage_row(module: TransferModule, stage_name: str, epochs: int, seconds: float) -> dict[str, Any]:
    rows = [r for r in module.history if r["stage"] == stage_name]
    row: dict[str, Any] = {"epochs": epochs, "seconds": round(seconds, 2)}
    if rows:
        best = max(rows, key=lambda r: r.get("val/acc", float("-inf")))
        row.update({"val/acc": best.get("val/acc"), "val/loss": best.get("val/loss"), "best_epoch": best["epoch"]})
        row["train/loss"] = rows[-1].get("train/loss")
    row.update(module.last_test)
    return row


def _quiet_known_warnings() -> None:
    # Lightning's banners (GPU available, tips, "fit stopped") would repeat for every plan step; the stage
    # progress bar and the end-of-run table say what matters. Its warnings still show.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    # Frozen parts run in eval mode on purpose (their BatchNorm statistics must not move).
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode", category=UserWarning)
    # Few-shot data sets have fewer batches per epoch than the logging interval; epoch metrics still log.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*", category=UserWarning)
    # In-memory data sets need no worker processes.
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*", category=UserWarning)
    # Under DDP: epoch-level values are torchmetrics results (already reduced over ranks) or the same on every
    # rank (learning rates, trainable counts), so Lightning's advice to all-reduce them again does not apply.
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")
    # TransferModule.on_after_batch_transfer (channels-last batches) is meant to apply to every data module.
    warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer` in `LightningModule`.*")
    # Lightning's own use of a torch API deprecated in newer torch releases.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def run(cfg: DictConfig, run_dir: Path, resume: bool | str | None = None) -> dict[str, Any]:
    """Run every stage of the configured strategy and write the run's outputs into ``run_dir``.

    Args:
        cfg: The composed Hydra config.
        run_dir: Output directory of this run (Hydra's ``runtime.output_dir``).
        resume: ``False``: a fresh run (a dir that holds a finished run is refused); ``True``: continue from
            the newest checkpoint in ``run_dir`` (a finished run is returned as it is); ``"auto"`` (sweep jobs
            run again): finished → returned, checkpoints → continued, else fresh. ``None`` reads ``cfg.resume``.

    Returns:
        The content written to ``metrics.json``.
    """
    start = time.perf_counter()
    _quiet_known_warnings()
    skip_failing_nvml_probe()
    resume = cfg.get("resume", False) if resume is None else resume
    finished = _finished_metrics(cfg, run_dir, resume)
    if finished is not None:
        return finished
    run_dir.mkdir(parents=True, exist_ok=True)
    kwargs = trainer_kwargs(_container(cfg, "trainer"))  # checked before any weights load
    speed, _ = split_speed_settings(_container(cfg, "trainer"))
    check_speed_settings(speed)
    if is_script_launched_ddp(kwargs) and HydraConfig.initialized():
        use_job_command_for_ranks()  # ranks > 0 run this job in this run dir (training/distributed.py)
    rank_zero = is_rank_zero()
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    module, data, plan = build_module(cfg)
    device = _compute_device(kwargs)
    apply_speed_settings(module, speed, on_gpu=device.type == "cuda")
    placed = data.place_on(device) if isinstance(data, TransferDataModule) else None
    if placed:
        log.info("%s", placed)
    log.info("data: %s", data.describe() if hasattr(data, "describe") else type(data).__name__)
    log.info("plan:\n%s", format_plan(plan, module.hparams["backbone_name"]))

    logger = RunTensorBoardLogger(str(run_dir)) if _container(cfg, "logger").get("tensorboard", True) else None
    cache_cfg = _container(cfg, "feature_cache")
    cache = FeatureCache(Path(cache_cfg["dir"]) if cache_cfg.get("dir") else None)
    stages: dict[str, Any] = {}
    ddp_sync: dict[str, list[str]] = {}  # step -> weight digest of every rank, under DDP
    module.run_state = {"stages": stages, "ddp_sync": ddp_sync, "step_offset": 0}
    point = _resume_point(run_dir, plan, resume)
    if point is not None:
        saved = torch.load(point.checkpoint, map_location="cpu", weights_only=True).get(STATE_KEY, {})
        saved_run = saved.get("run_state", {})
        stages.update(saved_run.get("stages", {}))
        ddp_sync.update(saved_run.get("ddp_sync", {}))
        if logger is not None:
            logger.step_offset = int(saved_run.get("step_offset", 0))
        log.info("resume: continuing at step %s from %s", plan.steps[point.step_index].label, point.checkpoint)
    trainer: pl.Trainer | None = None
    loaders: dict[str, Any] | None = None
    num_stages = len(plan.strategy.stages)
    for stage_index, stage in enumerate(plan.strategy.stages):
        steps = [(i, s) for i, s in enumerate(plan.steps) if s.stage_index == stage_index]
        if point is not None and steps[-1][0] < point.step_index:
            continue  # finished before the kill: its row came back with the checkpoint
        stage_start = time.perf_counter()
        module.reset_best()
        for index, step in steps:
            if point is not None and index < point.step_index:
                continue  # its weights and history come back with the resume checkpoint
            ckpt_path = point.checkpoint if point is not None and index == point.step_index else None
            module.set_step(step)
            module.train()  # a test at the end of the previous stage left it in eval mode
            loaders = _feature_loaders(module, data, cache, cache_cfg, step, device, kwargs, rank_zero)
            callbacks = _step_callbacks(cfg, step, run_dir, num_stages)
            trainer = build_trainer(kwargs, step.epochs, logger, callbacks, str(run_dir))
            module.run_state["step_offset"] = logger.step_offset if logger is not None else 0
            if loaders is not None:
                trainer.fit(
                    module, train_dataloaders=loaders["train"], val_dataloaders=loaders["val"],
                    ckpt_path=ckpt_path, weights_only=True,
                )  # fmt: skip
            else:
                trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
            digests = check_ranks_in_sync(module, step.label)
            if digests is not None:
                ddp_sync[step.label] = digests
            if logger is not None:
                logger.step_offset += trainer.global_step
        if stage.carry == "best" and module.best_state is not None:
            module.load_state_dict(module.best_state)
        module.last_test = {}
        if cfg.get("test_each_stage", True) and trainer is not None:
            _test(trainer, module, data, loaders)
        stages[stage.name] = _stage_row(module, stage.name, stage.epochs, time.perf_counter() - stage_start)

    assert trainer is not None  # a strategy has at least one stage with at least one epoch
    if not module.last_test:
        _test(trainer, module, data, loaders)
    last = stages[plan.strategy.stages[-1].name]
    # test/acc first, then test/loss (+ test/<task>/* of a multi-task run)
    final = {"test/acc": module.last_test["test/acc"], **module.last_test}
    final["val/acc"] = last.get("val/acc")

    resolved = OmegaConf.to_container(cfg, resolve=True)
    if rank_zero:  # under DDP every rank gets here; one writes
        (run_dir / CONFIG_FILE).write_text(OmegaConf.to_yaml(resolved))
    files = [CONFIG_FILE, METRICS_FILE]
    if cfg.get("export", True) and rank_zero:
        export_model(
            merge_adapters(module),
            run_dir / MODEL_FILE,
            {
                "backbone_name": module.hparams["backbone_name"],
                "num_classes": module.hparams["num_classes"],
                "class_names": module.hparams["class_names"],
                "config": resolved,
                "format": "transferlab.model.v1",
            }
            # multi-task: the class names of each head (heads.<task>.*)
            | ({"tasks": module.hparams["tasks"]} if "tasks" in module.hparams else {}),
        )
        files.insert(0, MODEL_FILE)
    if logger is not None:
        files.append("tensorboard/")
        logger.step_offset = 0
        logger.log_hyperparams(
            _hparams(cfg, plan),
            metrics={f"hparams/{k.replace('/', '_')}": v for k, v in final.items() if v is not None},
        )
        logger.close()
    if (run_dir / "checkpoints").is_dir():
        files.append("checkpoints/")

    metrics = {
        "run_dir": str(run_dir),
        "backbone": module.hparams["backbone_name"],
        "data": _container(cfg, "data").get("name"),
        "strategy": plan.strategy.name,
        "seed": int(cfg.seed),
        "num_classes": module.hparams["num_classes"],
        "total_params": plan.total_params,
        "seconds": round(time.perf_counter() - start, 2),
        "final": final,
        "stages": stages,
        "epochs": module.history,
        # per-class accuracy and confusion counts of the final test
        "test_details": module.last_test_details,
        "files": files,
    }
    if ddp_sync:
        metrics["ddp"] = {"world_size": len(next(iter(ddp_sync.values()))), "weight_sha256_by_step": ddp_sync}
    if rank_zero:
        write_json_atomic(run_dir / METRICS_FILE, metrics)
    return metrics


def _finished_metrics(cfg: DictConfig, run_dir: Path, resume: bool | str) -> dict[str, Any] | None:
    """The metrics of a run that already finished in ``run_dir`` (when resuming), else ``None``.

    Raises:
        ConfigError: When a fresh run would overwrite a finished one, or the finished run had another config.
    """
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    if resume in (True, "auto"):
        stored = run_dir / CONFIG_FILE
        now = _comparable(OmegaConf.to_container(cfg, resolve=True))
        if stored.is_file() and _comparable(OmegaConf.to_container(OmegaConf.load(stored))) != now:
            raise ConfigError(
                f"{run_dir} holds a finished run of a different config ({CONFIG_FILE} differs), so it is not "
                "this job's result. Fix: give this sweep or run its own dir (hydra.sweep.dir=... / "
                "hydra.run.dir=...)."
            )
        log.info("%s already holds this finished run (%s): skipped", run_dir, METRICS_FILE)
        return json.loads(path.read_text())
    raise ConfigError(
        f"hydra.run.dir={run_dir}: this dir already holds a finished run ({METRICS_FILE}); a new run would "
        "overwrite its checkpoints and results. Fix: choose another dir (or leave hydra.run.dir to its "
        "timestamped default), or 'transferlab resume <dir>' to keep it."
    )


def _comparable(config: Any) -> Any:
    """A resolved config without the keys that say how to run it, not what it computes (``resume``)."""
    return {k: v for k, v in config.items() if k != "resume"} if isinstance(config, dict) else config


def _resume_point(run_dir: Path, plan: Plan, resume: bool | str) -> ResumePoint | None:
    """Where to continue (``None``: from the start). ``auto`` continues only where checkpoints exist."""
    if resume is True:
        return find_resume_point(run_dir, plan)
    if resume == "auto":
        try:
            return find_resume_point(run_dir, plan)
        except ConfigError:
            return None
    return None


def _compute_device(kwargs: dict[str, Any]) -> torch.device:
    """Where features are computed for the cache: this rank's GPU when training runs on GPUs, else the CPU."""
    if str(kwargs.get("accelerator", "auto")) in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0") or 0))
    return torch.device("cpu")


def _feature_loaders(
    module: TransferModule,
    data: pl.LightningDataModule,
    cache: FeatureCache,
    cache_cfg: dict[str, Any],
    step: StepPlan,
    device: torch.device,
    kwargs: dict[str, Any],
    rank_zero: bool,
) -> dict[str, Any] | None:
    """Loaders over cached features when the step's backbone is entirely frozen, else ``None`` (live images)."""
    blocker = cache_blocker(module, data, bool(cache_cfg.get("enabled", True)))
    if blocker is not None:
        module.features_cached = False
        if not any(p.requires_grad for p in module.backbone.parameters()):  # frozen, yet not cacheable: say why
            log.info("feature cache: step %s computes features live: %s", step.label, blocker)
        return None
    cached = cache.get(module.backbone, data, _data_cfg(module), device, str(kwargs["precision"]), rank_zero)
    module.features_cached = True
    where = cache.path(cached.key) if cached.source != "memory" else "memory"
    log.info(
        "feature cache: step %s trains the head on cached features (%s in %.2f s, %s)",
        step.label, cached.source, cached.seconds, where,
    )  # fmt: skip
    return cached_loaders(cached, data, device)


def _data_cfg(module: TransferModule) -> dict[str, Any]:
    """The run's plain ``data`` config (part of the feature cache key)."""
    return dict(module.hparams["config"].get("data") or {})


def _test(
    trainer: pl.Trainer, module: TransferModule, data: pl.LightningDataModule, loaders: dict[str, Any] | None
) -> None:
    """Test the module: on cached test features if the last step trained on them, else on the data module."""
    if module.features_cached and loaders is not None:
        trainer.test(module, dataloaders=loaders["test"], verbose=False)
    else:
        module.features_cached = False
        trainer.test(module, datamodule=data, verbose=False)
    module.features_cached = False


def _hparams(cfg: DictConfig, plan: Plan) -> dict[str, Any]:
    """Flat, plain hyperparameters for the HParams dashboard: choices and scalars that tell runs apart."""
    out: dict[str, Any] = {"seed": int(cfg.seed), "strategy": plan.strategy.name}
    for group in ("backbone", "data", "strategy", "regularizer", "trainer"):
        flat = _flatten(_container(cfg, group), group)
        out.update({k: v for k, v in flat.items() if isinstance(v, (int, float, str, bool)) or v is None})
    out.update(_overridden_values(cfg))
    return {k: ("null" if v is None else v) for k, v in out.items()}


def _overridden_values(cfg: DictConfig) -> dict[str, Any]:
    """The job's command-line overrides as HParams columns (a sweep's swept keys, whatever group they are in).

    ``group=option`` gives ``group`` → option (e.g. ``strategy`` → ``lp_ft``, ``experiment`` → its name);
    ``a.b=value`` gives ``a.b`` → the resolved value.
    """
    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    choices = dict(hydra_cfg.runtime.choices)
    out: dict[str, Any] = {}
    for override in hydra_cfg.overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in choices:
            out[key] = str(choices[key])
        elif "/" not in key and not key.startswith("hydra"):
            value = OmegaConf.select(cfg, key, default=None)
            if isinstance(value, (int, float, str, bool)) or value is None:
                out[key] = value
            else:
                out[key] = str(OmegaConf.to_container(value, resolve=True))
    return out


def _flatten(d: Any, prefix: str) -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
        return out
    if isinstance(d, list):
        return {prefix: str(d)}
    return {prefix: d}


def summary(metrics: dict[str, Any]) -> str:
    """The short end-of-run table (see :func:`format_summary`)."""
    return format_summary(metrics)
