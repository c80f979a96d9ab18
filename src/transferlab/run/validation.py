"""Validate a composed config without training, reading data or loading weights: every problem at once.

``transferlab train`` stops at the first bad value. :func:`validate_config` runs exactly the functions a run
runs — the run's own keys (:func:`~transferlab.config.run.parse_run_options`), the backbone, strategy,
regularizer and trainer parsers, the extra callbacks, the data factory's check, the assembly's backbone
build and task checks, the plan compiler — and collects every problem instead of stopping:

* The parsers raise on their first problem, so :func:`_collect` records it, drops the key it names (the
  default takes its place) and runs the parser again, until it passes. A later problem whose message names a
  key already reported is a consequence of it and is not reported twice.
* The plan is compiled one stage at a time, so a bad pattern in one stage does not hide another's.
* Nothing heavy happens: the backbone architecture is built with random weights (to learn its layer groups),
  a weights value is only checked to exist, and data modules are built but never set up (an image folder
  lists its files; no image is decoded, no data set file is read, nothing downloads).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

from omegaconf import DictConfig

from transferlab.config.run import GROUP_KEYS, parse_run_options
from transferlab.errors import TransferlabError, user_message

T = TypeVar("T")

#: A message that starts with a config key: ``data.batch_size='abc': …``, ``trainer.foo: …``, ``seed=…``.
_LEADING_KEY = re.compile(r"^([A-Za-z_]\w*(?:\.[\w-]+)*)(?=[=: ])")
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
        problems: Every problem, in check order (run keys, strategy, trainer, backbone, layer groups, data, …).
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

    def add_error(self, err: BaseException, fallback: str, resolved: Mapping[str, Any]) -> None:
        """Record an exception's message under the key it starts with (else ``fallback``)."""
        message = user_message(err)
        key = _key_of(message) or fallback
        self.add(key, _lookup(resolved, key.split(".")), message)


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


def _key_of(message: str) -> str | None:
    found = _LEADING_KEY.match(message)
    return found.group(1) if found else None


def _names_a_reported_key(message: str, reported: set[str]) -> bool:
    return any(re.search(rf"(?<![\w.]){re.escape(k)}(?=[=: .,)]|$)", message) for k in reported)


def _collect(
    report: ValidationReport, group: str, raw: Mapping[str, Any], check: Callable[[dict[str, Any]], T], fallback: str
) -> T | None:
    """Run ``check`` on a copy of a group's plain config until it passes, recording each problem it raises.

    Args:
        report: Where problems go.
        group: The group's config path (``data``, ``strategy``), or ``""`` for the top-level run keys.
        raw: The group's plain config.
        check: Raises a :class:`TransferlabError` on its first problem, else returns a value.
        fallback: Key to report when the message does not start with one of the group.

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
            if key is None or not (not group or key == group or key.startswith(f"{group}.")):
                key = fallback
            if key in reported:
                return None  # dropping it did not help (a required key): reported once already
            path = key.split(".")[1:] if group else key.split(".")
            if not _names_a_reported_key(message, reported):
                report.add(key, _lookup(raw, path), message)
            reported.add(key)
            if not path or not _drop(work, path):
                return None
    return None


def _group(resolved: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = resolved.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


# ---- the checks of the whole config ---------------------------------------------------------------------------
def _check_layer_groups(config: Any, report: ValidationReport) -> Any:
    """Build the architecture (random init, cheap) with the adapter, and compile each stage's plan on its own."""
    from transferlab.model.freeze import GroupIndex
    from transferlab.run.assembly import build_backbone
    from transferlab.strategies.plan import compile_plan

    try:
        backbone, _ = build_backbone(config, load_weights=False)
    except TransferlabError as err:
        report.add_error(err, "strategy.adapter", config.resolved)
        return None
    except Exception as err:  # a registered architecture that cannot be built here: report it, check the rest
        name = config.backbone.name
        report.add("backbone.name", name, f"backbone.name={name}: cannot be built ({type(err).__name__}: {err}).")
        return None
    infos = GroupIndex(backbone).infos()
    # strategy=auto: every recipe it may choose is checked (its stages are chosen from the data later)
    recipes = config.strategy.recipes or {None: config.strategy}
    for recipe_name, strategy in recipes.items():
        where = "strategy" if recipe_name is None else f"strategy.recipes.{recipe_name}"
        for stage in strategy.stages:  # one stage at a time: a bad pattern in one does not hide another's
            try:
                compile_plan(replace(strategy, stages=(stage,)), infos, head_params=0)
            except TransferlabError as err:
                report.add_error(err, f"{where}.stages.{stage.name}", config.resolved)
    return backbone


def _check_task(config: Any, data: Any, num_features: int, report: ValidationReport) -> None:
    from transferlab.run.assembly import build_task, check_task

    try:
        check_task(config, build_task(data, num_features, config.strategy.head_dropout, config.task), data)
    except TransferlabError as err:
        report.add_error(err, "data", config.resolved)


def _summaries(resolved: Mapping[str, Any], config: Any, data: Any) -> dict[str, str]:
    backbone = _group(resolved, "backbone")
    weights = backbone.get("weights")
    out = {"backbone": f"{backbone.get('name')} (weights {weights if weights is not None else 'null'})"}
    if data is not None:
        out["data"] = f"{_group(resolved, 'data').get('name')} ({data.num_classes} classes)"
    if config is not None:
        stages = " → ".join(f"{s.name} {s.epochs} ep" for s in config.strategy.stages)
        if config.strategy.recipes:  # strategy=auto
            stages = f"chosen from the data at train time among {' | '.join(config.strategy.recipes)}"
        out["strategy"] = f"{config.strategy.name} ({stages})"
        kwargs = config.trainer.kwargs
        accelerator, devices = kwargs.get("accelerator", "auto"), kwargs.get("devices", 1)
        out["trainer"] = f"{accelerator}, devices={devices}, {kwargs['precision']}"
    return out


def validate_config(cfg: DictConfig | Mapping[str, Any]) -> ValidationReport:
    """Check a composed config without training, reading data or loading weights.

    Args:
        cfg: The config as ``transferlab train`` composes it.

    Returns:
        Every problem found, a short summary of the job, and notes on what was not checked.
    """
    from transferlab.backbones.base import DataConfig
    from transferlab.backbones.registry import CHECKPOINT
    from transferlab.config.run import RunOptions
    from transferlab.data.factory import check_data
    from transferlab.model.tasks.options import TaskOptions, parse_task
    from transferlab.regularizers.factory import parse_regularizer
    from transferlab.run.callbacks import build_extra_callbacks
    from transferlab.run.spec import RunConfig, parse_backbone, resolve
    from transferlab.run.trainer import TrainerSpec, parse_trainer
    from transferlab.strategies.spec import parse_strategy

    report = ValidationReport()
    try:
        resolved = resolve(cfg)
    except TransferlabError as err:
        report.add_error(err, "config", {})
        return report
    run_keys = {k: v for k, v in resolved.items() if k not in GROUP_KEYS}
    options = _collect(report, "", run_keys, parse_run_options, "config")
    if options is not None:
        try:
            build_extra_callbacks(options.callbacks.extra)
        except TransferlabError as err:
            report.add_error(err, "callbacks.extra", resolved)
    strategy = _collect(report, "strategy", _group(resolved, "strategy"), parse_strategy, "strategy")
    trainer = _collect(report, "trainer", _group(resolved, "trainer"), parse_trainer, "trainer")
    backbone_choice = _collect(report, "backbone", _group(resolved, "backbone"), parse_backbone, "backbone.name")
    regularizer = _collect(
        report,
        "regularizer",
        _group(resolved, "regularizer"),
        lambda r: (parse_regularizer(r), r)[1],
        "regularizer.name",
    )
    task = _collect(report, "task", _group(resolved, "task"), parse_task, "task")
    # The parts that passed (bad keys dropped, defaults in their place) check what needs several groups at once.
    config = None
    if strategy is not None and backbone_choice is not None:
        config = RunConfig(
            options=options or RunOptions(),
            backbone=backbone_choice,
            strategy=strategy,
            regularizer=regularizer or {},
            task=task or TaskOptions(),
            trainer=trainer or TrainerSpec({"precision": "32-true"}),
            data=_group(resolved, "data"),
            resolved=resolved,
        )
    backbone = None
    if backbone_choice is not None and backbone_choice.name == CHECKPOINT:
        report.notes.append(
            "layer groups not checked: backbone=checkpoint takes its architecture from the weights file, "
            "which validate does not open"
        )
    elif config is not None:
        backbone = _check_layer_groups(config, report)
    data_config = backbone.data_config if backbone is not None else DataConfig()
    data = _collect(report, "data", _group(resolved, "data"), lambda r: check_data(r, data_config), "data.root")
    if config is not None and data is not None:
        _check_task(config, data, int(getattr(backbone, "num_features", 1)), report)
    report.summary = _summaries(resolved, config if trainer is not None else None, data)
    return report
