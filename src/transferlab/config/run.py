"""The run schema: every top-level key of ``conf/train.yaml`` parsed once, at the edge, into a frozen dataclass.

That is the run's own keys and the small groups that configure the run itself (``paths``, ``logger``,
``callbacks``, ``feature_cache``).

The building-block groups have their own parsers (``backbone``, ``data``, ``strategy``, ``regularizer``,
``trainer``); :func:`parse_run_options` reads the rest. A bad value raises a
:class:`~transferlab.errors.ConfigError` that names the key, the value and the fix; an unknown top-level key
(``+sed=1``) is refused with a did-you-mean. ``transferlab validate`` runs this same function.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferlab.config.logger import LoggerOptions, parse_logger
from transferlab.config.readers import (
    MISSING,
    check_keys,
    read_bool,
    read_int,
    read_mapping,
    read_str,
    unknown_key_error,
)
from transferlab.errors import ConfigError

#: Top-level keys parsed by their own group parser (not by this module).
GROUP_KEYS = ("backbone", "data", "strategy", "regularizer", "task", "trainer")
#: Top-level keys of the run itself.
RUN_KEYS = (
    "task_name",
    "tags",
    "seed",
    "test_each_stage",
    "export",
    "feature_cache",
    "resume",
    "optimized_metric",
    "paths",
    "logger",
    "callbacks",
    "num_classes",
)
#: numpy and torch seeds are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1
INTERVAL_KEY = "callbacks.checkpoint.last_min_interval_s"
_METRIC = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")


@dataclass(frozen=True)
class CheckpointOptions:
    """``callbacks.checkpoint``: what is written per plan step.

    Attributes:
        save_last: Write ``checkpoints/<step>/last.ckpt`` (what ``transferlab resume`` continues from).
        last_min_interval_s: Least seconds between two ``last.ckpt`` writes of a step (0: every epoch).
        save_top_k: Best checkpoints kept per step by the monitored metric (0: none, -1: all).
    """

    save_last: bool = True
    last_min_interval_s: float = 30.0
    save_top_k: int = 1


@dataclass(frozen=True)
class CallbackOptions:
    """``callbacks``: checkpoints, the progress bar and any extra Lightning callbacks.

    Attributes:
        checkpoint: What is written per plan step.
        progress_refresh_rate: Batches between progress-bar refreshes (0: no bar).
        extra: Name → ``{_target_: <callback class>, ...arguments}`` (``null`` entries removed).
    """

    checkpoint: CheckpointOptions = field(default_factory=CheckpointOptions)
    progress_refresh_rate: int = 1
    extra: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureCacheOptions:
    """``feature_cache``: features of frozen backbones computed once.

    Attributes:
        enabled: Use cached features where a step's backbone is entirely frozen.
        dir: Where ``<key>.safetensors`` files are shared between runs (``None``: memory only).
    """

    enabled: bool = True
    dir: Path | None = None


@dataclass(frozen=True)
class RunOptions:
    """The run's own keys, typed (see the module docstring).

    Attributes:
        task_name: The run's task (the first folder under ``paths.output_root``).
        tags: Free-form labels stored with the run.
        seed: Seeds python, numpy, torch and the data (0 … 2**32 − 1).
        test_each_stage: Test the carried weights at the end of every stage.
        export: Write ``model.safetensors``.
        resume: Continue from the newest checkpoint in the run dir.
        optimized_metric: The monitored validation metric, in one place: it picks each stage's best epoch
            (``carry: best``), names the best checkpoints, is what ``transferlab train`` returns to Hydra
            sweepers and what ``report`` chooses on. ``None``: the task's own (``val/acc``, or ``val/map`` for
            multi-label data); the assembly resolves it.
        output_root: ``paths.output_root``.
        data_dir: ``paths.data_dir``.
        logger: ``logger.*``: the experiment trackers (TensorBoard, CSV, MLflow; ``config/logger.py``).
        feature_cache: ``feature_cache.*``.
        callbacks: ``callbacks.*``.
        num_classes: A declared class count the data must match (``+num_classes=N``), or ``None``.
    """

    task_name: str = "train"
    tags: tuple[str, ...] = ()
    seed: int = 0
    test_each_stage: bool = True
    export: bool = True
    resume: bool = False
    optimized_metric: str | None = None
    output_root: str = "outputs"
    data_dir: str = "data"
    logger: LoggerOptions = field(default_factory=LoggerOptions)
    feature_cache: FeatureCacheOptions = field(default_factory=FeatureCacheOptions)
    callbacks: CallbackOptions = field(default_factory=CallbackOptions)
    num_classes: int | None = None

    @property
    def tensorboard(self) -> bool:
        """``logger.tensorboard`` (kept for the callers that only ask about TensorBoard)."""
        return self.logger.tensorboard


def _task_name(raw: Mapping[str, Any]) -> str:
    name = read_str(raw, "task_name", "train", example="train")
    assert name is not None
    if "/" in name or "\\" in name or "\0" in name or name in (".", ".."):
        raise ConfigError(
            f"task_name={name!r}: names a folder under paths.output_root, so it cannot contain '/' or be '.'/'..'. "
            "Fix: task_name=my_task (use paths.output_root=<dir> to move the outputs)."
        )
    return name


def _tags(raw: Mapping[str, Any]) -> tuple[str, ...]:
    value = raw.get("tags", [])
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"tags={value!r}: expected a list of labels. Fix: tags=[baseline,digits] or tags=[].")
    for tag in value:
        if not isinstance(tag, (str, int, float)) or isinstance(tag, bool) or not str(tag).strip():
            raise ConfigError(f"tags={value!r}: every tag must be a non-empty word or number, not {tag!r}.")
    return tuple(str(t) for t in value)


def is_test_metric(name: str) -> bool:
    """Whether ``name`` is measured on the test split (``test/acc``, ``hparams/test_acc``, ``test/<task>/acc``)."""
    return any(part.startswith("test") for part in name.replace("_", "/").split("/"))


def _metric(raw: Mapping[str, Any]) -> str | None:
    name = read_str(raw, "optimized_metric", None, nullable=True, example="val/acc")
    if name is None:  # the task's own: val/acc (one label per image), val/map (multi-label), …
        return None
    if not _METRIC.match(name):
        raise ConfigError(
            f"optimized_metric={name!r}: expected a metric name such as val/acc or val/loss. "
            "Fix: optimized_metric=val/acc."
        )
    if is_test_metric(name):
        raise ConfigError(
            f"optimized_metric={name!r}: a sweeper optimising a test metric chooses its configuration on the test "
            "set, which biases the chosen run's test score upwards. Fix: optimized_metric=val/acc (or val/loss)."
        )
    return name


def _seconds(raw: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    full = f"{where}.{key}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{full}={value!r}: expected seconds >= 0. Fix: {full}=30 (0 = write last.ckpt every epoch).")
    return float(value)


def parse_checkpoint(raw: Mapping[str, Any]) -> CheckpointOptions:
    """Read ``callbacks.checkpoint``.

    Raises:
        ConfigError: On an unknown key or a bad value.
    """
    where = "callbacks.checkpoint"
    check_keys(raw, ("save_last", "last_min_interval_s", "save_top_k"), where=where)
    return CheckpointOptions(
        save_last=bool(read_bool(raw, "save_last", True, where=where)),
        last_min_interval_s=_seconds(raw, "last_min_interval_s", 0.0, where),
        save_top_k=int(read_int(raw, "save_top_k", 0, minimum=-1, where=where)),  # type: ignore[arg-type]
    )


def parse_extra_callbacks(raw: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Read ``callbacks.extra``: name → ``{_target_: ..., ...}`` (``null`` entries dropped).

    Raises:
        ConfigError: For an entry that is not a mapping with a ``_target_`` string.
    """
    out: dict[str, Mapping[str, Any]] = {}
    for key, spec in raw.items():
        if spec is None:
            continue
        target = spec.get("_target_") if isinstance(spec, Mapping) else None
        if not isinstance(target, str) or not target.strip():
            raise ConfigError(
                f"callbacks.extra.{key}: needs a '_target_' naming a Lightning callback class, e.g. "
                f"+callbacks.extra.{key}._target_=lightning.pytorch.callbacks.EarlyStopping"
            )
        out[str(key)] = dict(spec)
    return out


def parse_callbacks(raw: Mapping[str, Any]) -> CallbackOptions:
    """Read the ``callbacks`` group.

    Raises:
        ConfigError: On an unknown key or a bad value.
    """
    check_keys(raw, ("checkpoint", "progress_bar", "extra"), where="callbacks")
    bar = read_mapping(raw, "progress_bar", where="callbacks")
    check_keys(bar, ("refresh_rate",), where="callbacks.progress_bar")
    refresh = read_int(bar, "refresh_rate", 1, minimum=0, where="callbacks.progress_bar")
    return CallbackOptions(
        checkpoint=parse_checkpoint(read_mapping(raw, "checkpoint", where="callbacks")),
        progress_refresh_rate=int(refresh),  # type: ignore[arg-type]
        extra=parse_extra_callbacks(read_mapping(raw, "extra", where="callbacks")),
    )


def parse_feature_cache(raw: Mapping[str, Any]) -> FeatureCacheOptions:
    """Read the ``feature_cache`` group.

    Raises:
        ConfigError: On an unknown key or a bad value.
    """
    where = "feature_cache"
    check_keys(raw, ("enabled", "dir"), where=where)
    directory = read_str(raw, "dir", None, nullable=True, example="<folder>, or null (memory only)", where=where)
    return FeatureCacheOptions(
        enabled=bool(read_bool(raw, "enabled", True, where=where)),
        dir=None if directory is None else Path(directory).expanduser(),
    )


def parse_run_options(raw: Mapping[str, Any]) -> RunOptions:
    """Read every top-level key of a resolved config that is not a building-block group.

    Args:
        raw: The resolved config as a plain mapping (``OmegaConf.to_container(cfg, resolve=True)``).

    Returns:
        The typed options.

    Raises:
        ConfigError: For the first unknown key or bad value.
    """
    for key in raw:
        if key not in RUN_KEYS and key not in GROUP_KEYS:
            raise unknown_key_error(key, (*RUN_KEYS, *GROUP_KEYS))
    paths = read_mapping(raw, "paths")
    check_keys(paths, ("output_root", "data_dir"), where="paths")
    num_classes = raw.get("num_classes")
    task_name = _task_name(raw)
    output_root = str(read_str(paths, "output_root", "outputs", example="outputs", where="paths"))
    return RunOptions(
        task_name=task_name,
        tags=_tags(raw),
        seed=int(read_int(raw, "seed", 0, minimum=0, maximum=MAX_SEED)),  # type: ignore[arg-type]
        test_each_stage=bool(read_bool(raw, "test_each_stage", True)),
        export=bool(read_bool(raw, "export", True)),
        resume=bool(read_bool(raw, "resume", False)),
        optimized_metric=_metric(raw),
        output_root=output_root,
        data_dir=str(read_str(paths, "data_dir", "data", example="data", where="paths")),
        logger=parse_logger(read_mapping(raw, "logger"), task_name, output_root),
        feature_cache=parse_feature_cache(read_mapping(raw, "feature_cache")),
        callbacks=parse_callbacks(read_mapping(raw, "callbacks")),
        num_classes=None if num_classes in (None, MISSING) else read_int(raw, "num_classes", None, minimum=1),
    )
