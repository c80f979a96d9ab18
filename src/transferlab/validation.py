"""Validate a composed config without training, reading data or loading weights: every problem at once.

``transferlab train`` stops at the first bad value it meets. :func:`validate_config` runs the same checks the
run would (the strategy's stages, the trainer keys, the data options, the backbone name and weights value, the
trainable layer-group patterns, the regularizer) plus a few that only a dry run can afford, and collects every
problem instead of stopping:

* Each group is checked by the function the run itself calls (:func:`~transferlab.strategies.parse_strategy`,
  :func:`~transferlab.training.trainer.trainer_kwargs`, :func:`~transferlab.data.check_data`, …). Those raise
  on their first problem, so :func:`_collect` records it, drops the key it names (the default takes its place)
  and runs the check again, until it passes. A later problem whose message names a key already reported is a
  consequence of it and is not reported twice.
* Nothing heavy happens: the backbone architecture is built with ``weights=None`` (to learn its layer group
  names), a weights value is only checked to exist, and data modules are built but never set up (an image
  folder lists its files; no image is decoded, no data set file is read, nothing downloads).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from transferlab.errors import TransferlabError, user_message

T = TypeVar("T")

#: A message that starts with a config key: ``data.batch_size='abc': …``, ``trainer.foo: …``.
_LEADING_KEY = re.compile(r"^([A-Za-z_]\w*(?:\.[\w-]+)*)(?=[=: ])")
#: Keys of the ``feature_cache`` group and their types.
_FEATURE_CACHE_KEYS = {"enabled": (bool,), "dir": (str, type(None))}
#: Rounds of :func:`_collect` per group (each reports one problem).
_MAX_ROUNDS = 25


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config.

    Attributes:
        key: The config key (``data.batch_size``), or the group when no single key is to blame.
        value: The key's value in the composed config (``None`` when it has none).
        message: One paragraph: the key, the bad value and the fix.
    """

    key: str
    value: Any
    message: str


@dataclass
class ValidationReport:
    """What :func:`validate_config` found.

    Attributes:
        problems: Every problem, in check order (strategy, trainer, backbone, layer groups, data, …).
        summary: One short phrase per part: ``backbone``, ``data``, ``strategy``, ``trainer``.
        notes: What could not be checked without reading files (e.g. the layer groups of ``backbone=checkpoint``).
    """

    problems: list[Problem] = field(default_factory=list)
    summary: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """``{"ok": bool, "problems": [{"key", "value", "message"}, …]}`` (what ``--json`` prints)."""
        return {"ok": self.ok, "problems": [asdict(p) for p in self.problems]}

    def add(self, key: str, value: Any, message: str) -> None:
        """Record a problem (once: the same key and message are not repeated)."""
        if not any(p.key == key and p.message == message for p in self.problems):
            self.problems.append(Problem(key, value, message))


def _lookup(raw: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(raw, Mapping) or part not in raw:
            return None
        raw = raw[part]
    return raw


def _drop(raw: dict[str, Any], path: list[str]) -> bool:
    """Delete the key at ``path`` from ``raw``; ``False`` if there is none."""
    parent = _lookup(raw, path[:-1]) if len(path) > 1 else raw
    if not path or not isinstance(parent, dict) or path[-1] not in parent:
        return False
    del parent[path[-1]]
    return True


def _value_at(cfg: DictConfig, key: str) -> Any:
    """The plain value at ``key`` in the composed config (``None`` when there is none or it cannot resolve)."""
    try:
        value = OmegaConf.select(cfg, key, default=None)
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    except OmegaConfBaseException:
        return None


def _key_of(message: str) -> str | None:
    found = _LEADING_KEY.match(message)
    return found.group(1) if found else None


def _names_a_reported_key(message: str, reported: set[str]) -> bool:
    return any(re.search(rf"(?<![\w.]){re.escape(k)}(?=[=: .,)]|$)", message) for k in reported)


def _collect(
    report: ValidationReport, group: str, raw: Mapping[str, Any], check: Callable[[dict[str, Any]], T], fallback: str
) -> T | None:
    """Run ``check`` on a copy of the group's plain config until it passes, recording each problem it raises.

    Args:
        report: Where problems go.
        group: The group's config path (``data``, ``strategy``, ``trainer``).
        raw: The group's plain config.
        check: Raises a :class:`TransferlabError` on its first problem, else returns a value.
        fallback: Key to report when the message does not start with one.

    Returns:
        ``check``'s value once it passes, or ``None`` when a problem cannot be dropped (a missing required key,
        a problem of the whole group).
    """
    work = copy.deepcopy(dict(raw))
    reported: set[str] = set()
    for _ in range(_MAX_ROUNDS):
        try:
            return check(work)
        except TransferlabError as err:
            message = user_message(err)
            key = _key_of(message)
            if key is None or not (key == group or key.startswith(f"{group}.")):
                key = fallback
            if key in reported:
                return None  # dropping it did not help (a required key): reported once already
            path = key.split(".")[1:]
            if not _names_a_reported_key(message, reported):
                report.add(key, _lookup(raw, path), message)
            reported.add(key)
            if not path or not _drop(work, path):
                return None
    return None


def _container(cfg: DictConfig, key: str, report: ValidationReport) -> dict[str, Any] | None:
    try:
        node = cfg.get(key)
        return {} if node is None else OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        full = getattr(err, "full_key", None) or key
        report.add(str(full), None, f"{full}: cannot be resolved ({' '.join(str(err).split()[:30])}).")
        return None


# ---- the checks, one per part of the config ----------------------------------------------------------------
def _check_top_level(cfg: DictConfig, report: ValidationReport) -> None:
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        report.add("seed", seed, f"seed={seed!r}: expected an integer ≥ 0. Fix: seed=0.")
    for key in ("test_each_stage", "export"):
        value = cfg.get(key, True)
        if not isinstance(value, bool):
            report.add(key, value, f"{key}={value!r}: expected true or false. Fix: {key}=true or {key}=false.")


def _check_strategy(cfg: DictConfig, report: ValidationReport) -> Any:
    from transferlab.strategies import parse_strategy

    raw = _container(cfg, "strategy", report)
    return None if raw is None else _collect(report, "strategy", raw, parse_strategy, "strategy")


def _check_trainer(cfg: DictConfig, report: ValidationReport) -> dict[str, Any] | None:
    from transferlab.training.speed import check_speed_settings, split_speed_settings
    from transferlab.training.trainer import trainer_kwargs

    raw = _container(cfg, "trainer", report)
    if raw is None:
        return None
    kwargs = _collect(report, "trainer", raw, trainer_kwargs, "trainer")
    _collect(report, "trainer", raw, lambda r: check_speed_settings(split_speed_settings(r)[0]), "trainer")
    return kwargs


def _check_backbone(cfg: DictConfig, report: ValidationReport) -> tuple[str | None, Any]:
    """Name and weights value; returns ``(name, weights)`` with ``name=None`` when the name is bad."""
    from transferlab.backbones import check_backbone

    raw = _container(cfg, "backbone", report) or {}
    name, weights = raw.get("name"), raw.get("weights")
    if not isinstance(name, str) or not name:
        report.add("backbone.name", name, f"backbone.name={name!r}: expected a registry name. Fix: backbone=small_cnn.")
        return None, weights
    if weights == "???":
        report.add("backbone.weights", weights, f"backbone.weights is required for backbone={name} and not set. "
                   f"Fix: backbone.weights=<run dir or weights file>.")  # fmt: skip
        return name, weights
    try:
        check_backbone(name, weights)
    except TransferlabError as err:
        message = user_message(err)
        unknown = message.startswith("unknown backbone")
        key, value = ("backbone.name", name) if unknown else ("backbone.weights", weights)
        if message.startswith("weights="):
            message = f"backbone.{message}"
        elif not message.startswith(f"{key}="):
            message = f"{key}={value}: {message}"
        report.add(key, value, message)
        if unknown:
            return None, weights
    return name, weights


def _check_layer_groups(cfg: DictConfig, name: str, strategy: Any, report: ValidationReport) -> Any:
    """Build the architecture (random init, cheap), inject the adapter and compile every stage's plan."""
    from transferlab.adapters import apply_adapter
    from transferlab.backbones import create_backbone
    from transferlab.errors import ConfigError
    from transferlab.strategies import compile_plan
    from transferlab.strategies.spec import StrategySpec
    from transferlab.training.freeze import GroupIndex

    try:
        backbone = create_backbone(name, weights=None)
    except Exception as err:  # a registered architecture that cannot be built here: report it, check the rest
        report.add("backbone.name", name, f"backbone.name={name}: cannot be built ({type(err).__name__}: {err}).")
        return None
    if strategy is None:
        return backbone
    try:
        backbone = apply_adapter(backbone, strategy.adapter)
    except ConfigError as err:
        message = user_message(err)
        key = _key_of(message) or "strategy.adapter"
        report.add(key, _value_at(cfg, key), message)
    infos = GroupIndex(backbone).infos()
    for stage in strategy.stages:  # one stage at a time: a bad pattern in one does not hide another's
        single = StrategySpec(
            name=strategy.name,
            stages=(stage,),
            init=strategy.init,
            head_dropout=strategy.head_dropout,
            shared_groups=strategy.shared_groups,
            adapter=strategy.adapter,
        )
        try:
            compile_plan(single, infos, head_params=0)
        except ConfigError as err:
            message = user_message(err)
            key = _key_of(message) or f"strategy.stages.{stage.name}"
            report.add(key, _value_at(cfg, key), message)
    return backbone


def _check_data(cfg: DictConfig, data_config: Any, report: ValidationReport) -> Any:
    from transferlab.data import check_data

    raw = _container(cfg, "data", report)
    if raw is None:
        return None
    return _collect(report, "data", raw, lambda r: check_data(r, data_config), "data.root")


def _check_class_count(cfg: DictConfig, data: Any, report: ValidationReport) -> None:
    declared = cfg.get("num_classes")
    if declared is None or data is None:
        return
    actual = data.num_classes_per_task if hasattr(data, "num_classes_per_task") else data.num_classes
    if declared != actual:
        report.add(
            "num_classes",
            declared,
            f"num_classes={declared}: the config declares {declared} classes but data '{cfg.data.get('name')}' "
            f"has {actual} ({', '.join(map(str, data.class_names[:8]))}{', …' if len(data.class_names) > 8 else ''}"
            f"). Fix: num_classes={actual}, or change the data (e.g. data.classes=[…]).",
        )


def _check_regularizer(cfg: DictConfig, report: ValidationReport) -> None:
    from transferlab.regularizers.factory import parse_regularizer

    raw = _container(cfg, "regularizer", report)
    if raw is None:
        return
    _collect(report, "regularizer", raw, parse_regularizer, "regularizer.name")
    data_name = cfg.data.get("name") if cfg.get("data") is not None else None
    if data_name == "multitask" and (raw.get("name") or "none") != "none":
        report.add(
            "regularizer",
            raw.get("name"),
            f"regularizer={raw.get('name')}: not supported with data=multitask (no single head). "
            "Fix: regularizer=none.",
        )


def _check_feature_cache(cfg: DictConfig, report: ValidationReport) -> None:
    raw = _container(cfg, "feature_cache", report) or {}
    for key, value in raw.items():
        full = f"feature_cache.{key}"
        if key not in _FEATURE_CACHE_KEYS:
            valid = ", ".join(_FEATURE_CACHE_KEYS)
            report.add(full, value, f"{full}: unknown key; valid keys: {valid}. Fix: remove it.")
        elif not isinstance(value, _FEATURE_CACHE_KEYS[key]):
            fix = "true or false" if key == "enabled" else "a folder path, or null (in memory only)"
            report.add(full, value, f"{full}={value!r}: expected {fix}. Fix: {full}=<{fix.split(',')[0]}>.")


def _check_callbacks(cfg: DictConfig, report: ValidationReport) -> None:
    from transferlab.errors import ConfigError
    from transferlab.training.resume import INTERVAL_KEY, last_checkpoint_interval

    callbacks = _container(cfg, "callbacks", report) or {}
    checkpoint = callbacks.get("checkpoint") or {}
    try:
        last_checkpoint_interval(checkpoint)
    except ConfigError as err:
        report.add(INTERVAL_KEY, checkpoint.get("last_min_interval_s"), str(err))
    extra = callbacks.get("extra") or {}
    for key, spec in extra.items():
        if spec is not None and (not isinstance(spec, Mapping) or "_target_" not in spec):
            report.add(
                f"callbacks.extra.{key}",
                spec,
                f"callbacks.extra.{key}: needs a '_target_' naming a Lightning callback class, e.g. "
                f"+callbacks.extra.{key}._target_=lightning.pytorch.callbacks.EarlyStopping",
            )


# ---- the summary -------------------------------------------------------------------------------------------
def _summaries(
    cfg: DictConfig, name: str | None, weights: Any, strategy: Any, data: Any, kwargs: dict[str, Any] | None
) -> dict[str, str]:
    out = {"backbone": f"{name} (weights {weights if weights is not None else 'null'})"}
    if data is not None:
        out["data"] = f"{cfg.data.get('name')} ({data.num_classes} classes)"
    if strategy is not None:
        stages = " → ".join(f"{s.name} {s.epochs} ep" for s in strategy.stages)
        out["strategy"] = f"{strategy.name} ({stages})"
    if kwargs is not None:
        accelerator, devices = kwargs.get("accelerator", "auto"), kwargs.get("devices", 1)
        out["trainer"] = f"{accelerator}, devices={devices}, {kwargs['precision']}"
    return out


def validate_config(cfg: DictConfig) -> ValidationReport:
    """Check a composed config without training, reading data or loading weights.

    Args:
        cfg: The config as ``transferlab train`` composes it.

    Returns:
        Every problem found, a short summary of the job, and notes on what was not checked.
    """
    from transferlab.backbones.base import DataConfig

    report = ValidationReport()
    _check_top_level(cfg, report)
    strategy = _check_strategy(cfg, report)
    kwargs = _check_trainer(cfg, report)
    name, weights = _check_backbone(cfg, report)
    backbone = None
    if name == "checkpoint":
        report.notes.append(
            "layer groups not checked: backbone=checkpoint takes its architecture from the weights file, "
            "which validate does not open"
        )
    elif name is not None:
        backbone = _check_layer_groups(cfg, name, strategy, report)
    data_config = backbone.data_config if backbone is not None else DataConfig()
    data = _check_data(cfg, data_config, report)
    _check_class_count(cfg, data, report)
    _check_regularizer(cfg, report)
    _check_feature_cache(cfg, report)
    _check_callbacks(cfg, report)
    report.summary = _summaries(cfg, name, weights, strategy, data, kwargs)
    return report
