"""Strategy = data: a strategy is an ordered list of stages, each a frozen, validated :class:`StageSpec`.

No subclass per strategy: ``scratch``, ``feature_extraction``, ``finetune``, ``gradual_unfreeze`` and ``lp_ft``
are YAML files in ``conf/strategy/`` that the one engine applies. This module turns the plain config into
typed specs and rejects bad values with messages that name the key, the value and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from transferlab.config.readers import read_str
from transferlab.errors import ConfigError

BnMode = Literal["train", "eval", "frozen"]
Optimizer = Literal["adamw", "adam", "sgd"]
Scheduler = Literal["constant", "cosine", "linear"]
Carry = Literal["best", "last"]
Params = Literal["all", "bias", "adapter"]
Init = Literal["pretrained", "random"]


@dataclass(frozen=True)
class StageSpec:
    """One stage of a strategy: which layer groups train, for how long, how fast.

    Attributes:
        name: Stage name (the key under ``strategy.stages``).
        epochs: Number of epochs of the stage (≥ 1).
        trainable: Backbone groups that train from the first epoch: ``head`` (none), ``all``, ``top:K`` (the
            top K groups), ``new`` (the groups above ``shared_groups``, re-initialised) or a list of group-name
            patterns (fnmatch, e.g. ``[group4, top]``). The head always trains.
        lr_head: Learning rate of the head.
        lr_backbone: Learning rate of the top backbone group; ``None`` means the same as ``lr_head``.
        lr_decay: Layer-wise decay: group ``top - i`` gets ``lr_backbone * lr_decay**i``; ``None`` = no decay.
        bn: BatchNorm behaviour in trainable groups: ``train`` (batch statistics, running stats update),
            ``eval`` (running statistics used and kept, affine weights train), ``frozen`` (eval statistics
            and affine weights frozen). BatchNorm layers of frozen groups are always in eval mode.
        optimizer: ``adamw``, ``adam`` or ``sgd``.
        weight_decay: Weight decay of weights; biases and norm weights never decay.
        momentum: SGD momentum (ignored by Adam variants).
        scheduler: Per-epoch learning-rate shape over the stage: ``constant``, ``cosine`` or ``linear``.
        warmup_epochs: Linear warm-up epochs at the start of the stage (counted within ``epochs``).
        min_lr_ratio: Floor of the cosine/linear decay as a fraction of the base learning rate.
        unfreeze_every: Gradual unfreezing: every this many epochs one more backbone group (top-down) joins the
            trainable set; ``None`` = the trainable set stays fixed for the stage.
        unfreeze_max: Cap on the number of backbone groups gradual unfreezing opens; ``None`` = all.
        carry: Weights that start the next stage (and are exported if this is the last one): ``best``
            (highest ``val/acc`` of this stage) or ``last``.
        params: Which parameters of the trainable groups train: ``all``, ``bias`` (BitFit: biases only) or
            ``adapter`` (only adapter parameters such as LoRA's, the pretrained weights stay frozen).
    """

    name: str
    epochs: int = 1
    trainable: str | tuple[str, ...] = "all"
    lr_head: float = 1e-3
    lr_backbone: float | None = None
    lr_decay: float | None = None
    bn: BnMode = "train"
    optimizer: Optimizer = "adamw"
    weight_decay: float = 0.01
    momentum: float = 0.9
    scheduler: Scheduler = "cosine"
    warmup_epochs: int = 0
    min_lr_ratio: float = 0.0
    unfreeze_every: int | None = None
    unfreeze_max: int | None = None
    carry: Carry = "best"
    params: Params = "all"

    @property
    def backbone_lr(self) -> float:
        """The learning rate of the top backbone group (``lr_backbone`` or, if unset, ``lr_head``)."""
        return self.lr_head if self.lr_backbone is None else self.lr_backbone


@dataclass(frozen=True)
class StrategySpec:
    """A named, ordered list of stages.

    Attributes:
        name: Strategy name (shown in logs, TensorBoard hparams and reports).
        init: ``pretrained`` starts from the backbone's weights; ``random`` re-initialises it (the baseline).
        head_dropout: Dropout before the linear head.
        stages: The stages, in order.
        shared_groups: Share the first K layer groups: groups ``K`` and above are re-initialised before the
            first stage (``None`` = share all; the transfer depth of Yosinski et al. 2014).
        adapter: Parameter-efficient adapter settings (``{kind: lora, rank: 8, …}``) or ``None``.
    """

    name: str
    stages: tuple[StageSpec, ...]
    init: Init = "pretrained"
    head_dropout: float = 0.0
    shared_groups: int | None = None
    adapter: dict[str, Any] | None = None

    @property
    def total_epochs(self) -> int:
        """Epochs summed over all stages."""
        return sum(s.epochs for s in self.stages)


_STAGE_FIELDS = {f.name: f for f in dataclasses.fields(StageSpec) if f.name != "name"}
_STRATEGY_KEYS = ("name", "init", "head_dropout", "shared_groups", "adapter", "stages", "max_stage_epochs")
_CHOICES: dict[str, tuple[str, ...]] = {
    "bn": get_args(BnMode),
    "optimizer": get_args(Optimizer),
    "scheduler": get_args(Scheduler),
    "carry": get_args(Carry),
    "params": get_args(Params),
}


#: A sensible value per stage key, shown in the fix of an out-of-range value.
_EXAMPLES: dict[str, str] = {
    "epochs": "5",
    "lr_head": "0.01",
    "lr_backbone": "0.001",
    "lr_decay": "0.7",
    "unfreeze_every": "1",
    "warmup_epochs": "0",
    "unfreeze_max": "2",
    "weight_decay": "0.01",
    "momentum": "0.9",
    "min_lr_ratio": "0.0",
    "shared_groups": "2",
    "head_dropout": "0.1",
}


def _example(key: str) -> str:
    """A valid value of stage key ``key`` for a message's fix: the shipped example, else the default."""
    return _EXAMPLES.get(key) or str(_STAGE_FIELDS[key].default)


def _unknown_key(where: str, key: str, valid: list[str] | tuple[str, ...]) -> ConfigError:
    close = difflib.get_close_matches(key, list(valid), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return ConfigError(f"{where}.{key}: unknown key; {hint}valid keys: {', '.join(valid)}.")


def _number(key: str, value: Any, *, kind: type, minimum: float | None = None, strict: bool = False) -> Any:
    what = "an integer" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}={value!r}: expected {what}. Fix: {key}=<{what.split()[-1]}>.")
    if kind is int and not float(value).is_integer():
        raise ConfigError(f"{key}={value!r}: expected an integer. Fix: {key}={int(value)}.")
    value = kind(value)
    if minimum is not None and (value <= minimum if strict else value < minimum):
        op = ">" if strict else "≥"
        example = _EXAMPLES.get(key.rsplit(".", 1)[-1])
        fix = f"{key}=<{what.split()[-1]} {op} {minimum:g}>" + (f", e.g. {key}={example}" if example else "")
        raise ConfigError(f"{key}={value!r}: must be {op} {minimum}. Fix: {fix}.")
    return value


def _trainable(key: str, value: Any) -> str | tuple[str, ...]:
    if isinstance(value, str):
        if not value.strip():
            raise ConfigError(
                f"{key}={value!r}: must not be empty; name the groups that train. Fix: {key}=all (or head, top:2)."
            )
        if value in ("head", "all", "new"):
            return value
        if value.startswith("top:"):
            if not value[4:].isdigit():
                raise ConfigError(f"{key}={value!r}: 'top:K' needs an integer K, e.g. {key}=top:2.")
            return value
        return (value,)  # a single pattern
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    raise ConfigError(
        f"{key}={value!r}: expected 'head', 'all', 'new', 'top:K' or a list of layer-group patterns. "
        f"Fix: {key}=all or {key}=[group4,top] ('transferlab plan' shows the group names)."
    )


def parse_stage(name: str, raw: Mapping[str, Any], where: str) -> StageSpec:
    """Validate one stage's plain config and build its :class:`StageSpec`.

    Args:
        name: Stage name.
        raw: Plain mapping of the stage's keys.
        where: Config path of the stage for messages (``strategy.stages.<name>``).

    Raises:
        ConfigError: On an unknown key or a bad value; the message names the key and the fix.
    """
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _STAGE_FIELDS:
            raise _unknown_key(where, key, list(_STAGE_FIELDS))
        full = f"{where}.{key}"
        if value is None:
            if key in ("lr_backbone", "lr_decay", "unfreeze_every", "unfreeze_max"):
                values[key] = None
                continue
            raise ConfigError(f"{full}=null: a value is required here. Fix: {full}={_example(key)}.")
        if key in _CHOICES:
            if value not in _CHOICES[key]:
                raise ConfigError(
                    f"{full}={value!r}: choose one of {', '.join(_CHOICES[key])}. Fix: {full}={_example(key)}."
                )
            values[key] = value
        elif key == "trainable":
            values[key] = _trainable(full, value)
        elif key in ("epochs", "unfreeze_every"):
            values[key] = _number(full, value, kind=int, minimum=1)
        elif key in ("warmup_epochs", "unfreeze_max"):
            values[key] = _number(full, value, kind=int, minimum=0)
        elif key in ("lr_head", "lr_backbone"):
            values[key] = _number(full, value, kind=float, minimum=0.0, strict=True)
        elif key == "lr_decay":
            values[key] = _number(full, value, kind=float, minimum=0.0, strict=True)
            if values[key] > 1.0:
                raise ConfigError(
                    f"{full}={value!r}: layer decay must be in (0, 1] (lower groups learn slower). "
                    f"Fix: {full}={_EXAMPLES['lr_decay']} (or null: no decay)."
                )
        elif key in ("weight_decay", "momentum", "min_lr_ratio"):
            values[key] = _number(full, value, kind=float, minimum=0.0)
    spec = StageSpec(name=name, **values)
    if spec.warmup_epochs >= spec.epochs and spec.warmup_epochs > 0:
        raise ConfigError(
            f"{where}.warmup_epochs={spec.warmup_epochs}: warm-up must be shorter than the stage "
            f"({where}.epochs={spec.epochs}). Fix: lower warmup_epochs or raise epochs."
        )
    if spec.unfreeze_every is not None and spec.unfreeze_every >= spec.epochs:
        raise ConfigError(
            f"{where}.unfreeze_every={spec.unfreeze_every}: no unfreeze step fits in {spec.epochs} epochs. "
            f"Fix: {where}.unfreeze_every=<fewer than epochs> or {where}.epochs=<more>."
        )
    return spec


def _capped(stage: StageSpec, cap: int) -> StageSpec:
    """``stage`` with at most ``cap`` epochs; its warm-up and unfreeze interval shrink to fit (smoke runs)."""
    if stage.epochs <= cap:
        return stage
    every = stage.unfreeze_every
    return dataclasses.replace(
        stage,
        epochs=cap,
        warmup_epochs=min(stage.warmup_epochs, cap - 1),
        unfreeze_every=None if every is None else (min(every, cap - 1) or None),
    )


def parse_strategy(raw: Mapping[str, Any], where: str = "strategy") -> StrategySpec:
    """Validate the ``strategy`` config group and build a :class:`StrategySpec`.

    Args:
        raw: Plain mapping (``OmegaConf.to_container(cfg.strategy, resolve=True)``).
        where: Config path for messages.

    Raises:
        ConfigError: On unknown keys, bad values or no stages.
    """
    for key in raw:
        if key not in _STRATEGY_KEYS:
            raise _unknown_key(where, key, _STRATEGY_KEYS)
    stages_raw = raw.get("stages")
    if not isinstance(stages_raw, Mapping) or not stages_raw:
        raise ConfigError(
            f"{where}.stages: expected a mapping of stage name → stage settings with at least one stage; "
            f"got {stages_raw!r}. Fix: {where}=finetune, or {where}.stages.<stage>.epochs=5 "
            "(conf/strategy/*.yaml has examples)."
        )
    stages = []
    for name, stage_raw in stages_raw.items():
        if stage_raw is None:  # a stage switched off with strategy.stages.<name>=null
            continue
        if not isinstance(stage_raw, Mapping):
            raise ConfigError(
                f"{where}.stages.{name}={stage_raw!r}: expected a mapping of stage settings, or null to switch "
                f"the stage off. Fix: {where}.stages.{name}.epochs=5 (one key at a time)."
            )
        stages.append(parse_stage(str(name), stage_raw, f"{where}.stages.{name}"))
    if not stages:
        raise ConfigError(f"{where}.stages: every stage is null; keep at least one.")
    cap = raw.get("max_stage_epochs")
    if cap is not None:
        cap = _number(f"{where}.max_stage_epochs", cap, kind=int, minimum=1)
        stages = [_capped(stage, cap) for stage in stages]
    init = raw.get("init", "pretrained")
    if init not in get_args(Init):
        raise ConfigError(
            f"{where}.init={init!r}: choose one of {', '.join(get_args(Init))}. Fix: {where}.init=pretrained."
        )
    dropout = _number(f"{where}.head_dropout", raw.get("head_dropout", 0.0), kind=float, minimum=0.0)
    if dropout >= 1.0:
        raise ConfigError(f"{where}.head_dropout={dropout}: must be in [0, 1). Fix: {where}.head_dropout=0.1.")
    shared = raw.get("shared_groups")
    if shared is not None:
        shared = _number(f"{where}.shared_groups", shared, kind=int, minimum=0)
        if init == "random":
            raise ConfigError(f"{where}.shared_groups={shared}: nothing is shared when {where}.init=random.")
    elif any(s.trainable == "new" for s in stages):
        raise ConfigError(
            f"{where}.shared_groups=null: a stage trains 'new' groups, but with shared_groups null no group is new. "
            f"Fix: {where}.shared_groups=K (share the first K layer groups) or trainable=all."
        )
    adapter = raw.get("adapter")
    if adapter is not None and not isinstance(adapter, Mapping):
        raise ConfigError(
            f"{where}.adapter={adapter!r}: expected a group of keys such as {{kind: lora, rank: 8}}, or null. "
            f"Fix: strategy=lora, or {where}.adapter=null (no adapter)."
        )
    if adapter is None and any(s.params == "adapter" for s in stages):
        raise ConfigError(
            f"{where}.adapter=null: a stage trains params=adapter, which needs an adapter. "
            f"Fix: strategy=lora (or set {where}.adapter), or params=all."
        )
    if adapter is not None:
        from transferlab.adapters.spec import parse_adapter  # deferred: the adapters package imports peft, timm

        parse_adapter(adapter)  # every adapter key checked here, before anything is built
    return StrategySpec(
        name=str(read_str(raw, "name", "custom", example="my_strategy", where=where)),
        stages=tuple(stages),
        init=init,
        head_dropout=dropout,
        shared_groups=shared,
        adapter=None if adapter is None else dict(adapter),
    )
