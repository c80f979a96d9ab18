"""RunConfig: a composed config turned into typed values, once, at the edge (``DictConfig`` stops here).

:func:`parse_config` resolves the config and runs every group's own parser: the run's keys
(:func:`~transferlab.config.run.parse_run_options`), the backbone name and weights value, the strategy, the
regularizer and the trainer. The data group needs the backbone's preprocessing, so it is read by the assembly.
``train``, ``plan``, ``eval`` and ``validate`` all start here; ``validate`` runs the same parsers group by group
to list every problem at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from transferlab.backbones.registry import CHECKPOINT, check_backbone
from transferlab.config.readers import MISSING, check_keys, read_mapping
from transferlab.config.run import RunOptions, parse_run_options
from transferlab.errors import ConfigError, TransferlabError, WeightsError
from transferlab.model.tasks.options import TaskOptions, parse_task
from transferlab.regularizers.factory import parse_regularizer
from transferlab.run.callbacks import build_extra_callbacks
from transferlab.run.trainer import TrainerSpec, parse_trainer
from transferlab.strategies.spec import StrategySpec, parse_strategy

BACKBONE_KEYS = ("name", "weights")


@dataclass(frozen=True)
class BackboneChoice:
    """The ``backbone`` group: a registry name and a weights value (``null``, ``hub``, ``package``, a path)."""

    name: str
    weights: Any


@dataclass(frozen=True)
class RunConfig:
    """Every group of a run, checked.

    Attributes:
        options: The run's own keys (seed, callbacks, feature cache, …).
        backbone: Name and weights value.
        strategy: The parsed strategy.
        regularizer: The plain ``regularizer`` group (checked; built against the backbone by the assembly).
        task: The head's loss and thresholds (``task.*``).
        trainer: Trainer arguments and speed settings.
        data: The plain ``data`` group (read by the data factory, which needs the backbone's preprocessing).
        resolved: The whole resolved config as plain data (``config.yaml``, HParams, model metadata).
    """

    options: RunOptions
    backbone: BackboneChoice
    strategy: StrategySpec
    regularizer: Mapping[str, Any]
    task: TaskOptions
    trainer: TrainerSpec
    data: Mapping[str, Any]
    resolved: Mapping[str, Any]


def resolve(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The config as plain data, every interpolation resolved.

    Raises:
        ConfigError: When an interpolation cannot be resolved (a missing environment variable, a typo in
            ``${...}``), naming the key.
    """
    if not OmegaConf.is_config(cfg):
        return dict(cfg)  # type: ignore[arg-type]
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "config"
        detail = " ".join(str(err).split("\n")[0].split()[:30])
        raise ConfigError(
            f"{key}: cannot be resolved ({detail}). Fix: correct the interpolation or set the value."
        ) from None


def parse_backbone(raw: Mapping[str, Any]) -> BackboneChoice:
    """Check ``backbone.name`` and ``backbone.weights`` as the factory would, without loading anything.

    Raises:
        ConfigError: For an unknown key or a missing name or weights value.
        UnknownBackboneError, WeightsError: For a name or weights value the registry refuses (the message names
            ``backbone.name`` / ``backbone.weights``).
    """
    check_keys(raw, BACKBONE_KEYS, where="backbone")
    name, weights = raw.get("name"), raw.get("weights")
    if not isinstance(name, str) or not name.strip() or name == MISSING:
        raise ConfigError(f"backbone.name={name!r}: expected a registry name. Fix: backbone=small_cnn.")
    if weights == MISSING:
        raise ConfigError(
            f"backbone.weights is required for backbone={name} and not set. "
            "Fix: backbone.weights=<run dir or weights file>."
        )
    if weights is not None and not isinstance(weights, str):
        raise ConfigError(
            f"backbone.weights={weights!r}: expected null, hub, package or a path. Fix: backbone.weights=null."
        )
    if isinstance(weights, str) and not weights.strip():  # an unset ${oc.env:...} must not mean random init
        raise ConfigError(
            f"backbone.weights={weights!r}: must not be empty; null means random init. "
            "Fix: backbone.weights=null, hub, package or <run dir or weights file>."
        )
    try:
        check_backbone(name, weights)
    except TransferlabError as err:
        message = " ".join(str(err).split())
        if isinstance(err, WeightsError) or name == CHECKPOINT:
            key = "backbone.weights"
            message = f"backbone.{message}" if message.startswith("weights=") else message
            if not message.startswith(key):
                message = f"{key}={weights}: {message}"
        else:
            key = "backbone.name"
            message = message if message.startswith(key) else f"{key}={name}: {message}"
        raise type(err)(message) from None  # the same kind of error (WeightsError, …), naming the key
    return BackboneChoice(name, weights)


def parse_config(cfg: DictConfig | Mapping[str, Any]) -> RunConfig:
    """Parse a composed config (see the module docstring).

    Raises:
        ConfigError: At the first bad key or value, naming it and the fix.
    """
    resolved = resolve(cfg)
    options = parse_run_options(resolved)
    build_extra_callbacks(options.callbacks.extra)  # importable, Lightning callbacks, arguments accepted
    return RunConfig(
        options=options,
        backbone=parse_backbone(read_mapping(resolved, "backbone")),
        strategy=parse_strategy(read_mapping(resolved, "strategy")),
        regularizer=_regularizer(read_mapping(resolved, "regularizer")),
        task=parse_task(resolved.get("task")),
        trainer=parse_trainer(read_mapping(resolved, "trainer")),
        data=_data(resolved),
        resolved=resolved,
    )


def _regularizer(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    parse_regularizer(raw)
    return dict(raw)


def _data(resolved: Mapping[str, Any]) -> Mapping[str, Any]:
    data = resolved.get("data")
    if not isinstance(data, Mapping) or not data.get("name"):
        raise ConfigError(f"data={data!r}: expected a data group with a 'name'. Fix: data=digits.")
    return dict(data)
