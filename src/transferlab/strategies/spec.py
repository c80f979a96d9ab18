"""Strategy = data: a strategy is an ordered list of stages, each a frozen, validated :class:`StageSpec`.

No subclass per strategy: ``scratch``, ``feature_extraction``, ``finetune``, ``gradual_unfreeze`` and ``lp_ft``
are YAML files in ``conf/strategy/`` that the one engine applies. This module turns the plain config into
typed specs and rejects bad values with messages that name the key, the value and the fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from transferlab.config.readers import read_str
from transferlab.errors import ConfigError
from transferlab.strategies.auto import RECIPES, AutoSpec, parse_auto
from transferlab.strategies.values import EXAMPLES, NULLABLE, UNIT, number, trainable, unit, unknown_key

BnMode = Literal["train", "eval", "frozen"]
Optimizer = Literal["adamw", "adam", "sgd"]
Scheduler = Literal["constant", "cosine", "linear"]
Carry = Literal["best", "last"]
Params = Literal["all", "bias", "adapter"]
Init = Literal["pretrained", "random"]
Final = Literal["best", "last"]
HeadInit = Literal["ridge"]


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
        patience: Plateau rule: the stage ends once this many epochs in a row did not improve the monitored
            validation metric by more than ``min_delta`` (``epochs`` is then the most it runs); ``None`` = off.
        min_delta: The improvement the plateau rule counts (in the monitored metric's units).
        label_smoothing: Label smoothing of this stage's training loss; ``None`` = the ``task`` group's.
        mixup: Mixup alpha (Beta(α, α) mixing of image pairs and their labels, timm's ``Mixup``); 0 = off.
        cutmix: CutMix alpha (a pasted box of the paired image, labels by area); 0 = off. With both on, a batch
            uses one of them (``mix_switch_prob`` is CutMix's share).
        mix_prob: Probability that a training batch is mixed (when ``mixup`` or ``cutmix`` is on).
        mix_switch_prob: With both on, the probability that a mixed batch uses CutMix rather than mixup.
        lr_auto: ``lr: auto`` in the config: the engine runs ``lr-find``'s range test on the weights the stage
            starts from and trains at its suggested head rate, every other group keeping its planned ratio.
        ema_decay: An exponential moving average of the weights, updated every optimizer step with this decay
            (e.g. 0.998); at the end of the stage it is scored on val beside the raw weights and the better is
            carried. ``None`` = off.
        head_init: ``ridge``: before the stage trains, the head is set to a closed-form ridge probe of the
            frozen features (penalty and logit scale chosen on val; ``run/head_init.py``), a converged linear
            probe as LP-FT's paper uses, in one feature pass. ``None`` = the head as the previous stage left it.
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
    patience: int | None = None
    min_delta: float = 0.0
    label_smoothing: float | None = None
    mixup: float = 0.0
    cutmix: float = 0.0
    mix_prob: float = 1.0
    mix_switch_prob: float = 0.5
    ema_decay: float | None = None
    head_init: HeadInit | None = None
    lr_auto: bool = False

    @property
    def mixes(self) -> bool:
        """Whether training batches of this stage are mixed (mixup or CutMix)."""
        return (self.mixup > 0 or self.cutmix > 0) and self.mix_prob > 0

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
        final: The model the run ends with (tested, exported): ``best`` = the stage whose carried weights score
            best on the monitored validation metric (ties: lower val/loss, then the earlier stage), so a stage
            that hurts never leaves the run worse than the one before; ``last`` = the last stage's weights.
        auto: ``strategy=auto``'s rule; then ``stages`` is empty until the assembly chooses one of ``recipes``
            from the data (``strategies/auto.py``).
        recipes: ``strategy=auto``'s recipes by name, each a strategy of its own.
        choice: On the strategy ``auto`` chose: the recipe, its inputs and reasons (``None`` otherwise).
        where: The config path of this strategy's stages' parent, for messages (``strategy.recipes.<name>`` for
            an ``auto`` recipe).
    """

    name: str
    stages: tuple[StageSpec, ...]
    init: Init = "pretrained"
    head_dropout: float = 0.0
    shared_groups: int | None = None
    adapter: dict[str, Any] | None = None
    final: Final = "best"
    auto: AutoSpec | None = None
    recipes: Mapping[str, StrategySpec] | None = None
    choice: Mapping[str, Any] | None = None
    where: str = "strategy"

    @property
    def total_epochs(self) -> int:
        """Epochs summed over all stages."""
        return sum(s.epochs for s in self.stages)


_STAGE_FIELDS = {f.name: f for f in dataclasses.fields(StageSpec) if f.name not in ("name", "lr_auto")}
_STRATEGY_KEYS = (
    "name", "init", "head_dropout", "shared_groups", "adapter", "final", "stages", "max_stage_epochs", "auto",
    "recipes",
)  # fmt: skip
_CHOICES: dict[str, tuple[str, ...]] = {
    "bn": get_args(BnMode),
    "optimizer": get_args(Optimizer),
    "scheduler": get_args(Scheduler),
    "carry": get_args(Carry),
    "params": get_args(Params),
    "head_init": get_args(HeadInit),
}


def _example(key: str) -> str:
    """A valid value of stage key ``key`` for a message's fix: the shipped example, else the default."""
    return EXAMPLES.get(key) or str(_STAGE_FIELDS[key].default)


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
        if key == "lr":  # lr: auto — not a field: it sets lr_auto, and the stage's rates stay its base
            if value not in (None, "auto"):
                raise ConfigError(
                    f"{where}.lr={value!r}: expected auto (a range test at the stage's start scales the stage's "
                    f"rates) or null (the rates as given). Fix: {where}.lr=auto, or set {where}.lr_head."
                )
            values["lr_auto"] = value == "auto"
            continue
        if key not in _STAGE_FIELDS:
            raise unknown_key(where, key, [*_STAGE_FIELDS, "lr"])
        full = f"{where}.{key}"
        if value is None:
            if key in NULLABLE:
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
            values[key] = trainable(full, value)
        elif key in ("epochs", "unfreeze_every", "patience"):
            values[key] = number(full, value, kind=int, minimum=1)
        elif key in ("warmup_epochs", "unfreeze_max"):
            values[key] = number(full, value, kind=int, minimum=0)
        elif key in ("lr_head", "lr_backbone"):
            values[key] = number(full, value, kind=float, minimum=0.0, strict=True)
        elif key == "lr_decay":
            values[key] = number(full, value, kind=float, minimum=0.0, strict=True)
            if values[key] > 1.0:
                raise ConfigError(
                    f"{full}={value!r}: layer decay must be in (0, 1] (lower groups learn slower). "
                    f"Fix: {full}={EXAMPLES['lr_decay']} (or null: no decay)."
                )
        elif key in ("weight_decay", "momentum", "min_lr_ratio", "min_delta", "mixup", "cutmix"):
            values[key] = number(full, value, kind=float, minimum=0.0)
        elif key in UNIT or key in ("label_smoothing", "ema_decay"):
            values[key] = unit(full, key, value)
    spec = StageSpec(name=name, **values)
    if spec.warmup_epochs >= spec.epochs and spec.warmup_epochs > 0:
        raise ConfigError(
            f"{where}.warmup_epochs={spec.warmup_epochs}: warm-up must be shorter than the stage "
            f"({where}.epochs={spec.epochs}). Fix: lower warmup_epochs or raise epochs."
        )
    if spec.patience is not None and spec.patience >= spec.epochs:
        raise ConfigError(
            f"{where}.patience={spec.patience}: the plateau rule can never end a stage of {spec.epochs} epochs "
            f"(it needs patience + 1). Fix: {where}.patience=<fewer than epochs>, or {where}.epochs=<more>."
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
    every, patience = stage.unfreeze_every, stage.patience
    return dataclasses.replace(
        stage,
        epochs=cap,
        warmup_epochs=min(stage.warmup_epochs, cap - 1),
        unfreeze_every=None if every is None else (min(every, cap - 1) or None),
        patience=None if patience is None else (min(patience, cap - 1) or None),
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
            raise unknown_key(where, key, _STRATEGY_KEYS)
    if raw.get("auto") is not None or raw.get("recipes") is not None:
        return _parse_auto_strategy(raw, where)
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
        cap = number(f"{where}.max_stage_epochs", cap, kind=int, minimum=1)
        stages = [_capped(stage, cap) for stage in stages]
    init = raw.get("init", "pretrained")
    if init not in get_args(Init):
        raise ConfigError(
            f"{where}.init={init!r}: choose one of {', '.join(get_args(Init))}. Fix: {where}.init=pretrained."
        )
    dropout = number(f"{where}.head_dropout", raw.get("head_dropout", 0.0), kind=float, minimum=0.0)
    if dropout >= 1.0:
        raise ConfigError(f"{where}.head_dropout={dropout}: must be in [0, 1). Fix: {where}.head_dropout=0.1.")
    shared = raw.get("shared_groups")
    if shared is not None:
        shared = number(f"{where}.shared_groups", shared, kind=int, minimum=0)
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
    final = raw.get("final", "best")
    if final not in get_args(Final):
        raise ConfigError(
            f"{where}.final={final!r}: choose one of {', '.join(get_args(Final))} (best: the stage best on val; "
            f"last: the last stage). Fix: {where}.final=best."
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
        final=final,
    )


def _parse_auto_strategy(raw: Mapping[str, Any], where: str) -> StrategySpec:
    """``strategy=auto``: the rule and every recipe checked now, the stages chosen later from the data."""
    if raw.get("auto") is None:
        raise ConfigError(
            f"{where}.auto=null: {where}.recipes are chosen by that rule. Fix: strategy=auto (its rule and recipes), "
            "or name a strategy (strategy=lp_ft)."
        )
    if raw.get("stages"):
        raise ConfigError(
            f"{where}.stages: strategy=auto chooses its stages from the data, among {where}.recipes. Fix: change "
            f"a recipe ({where}.recipes.lp_ft.stages.finetune.epochs=8), pin one ({where}.auto.recipe=lp_ft), "
            "or name a strategy (strategy=lp_ft)."
        )
    spec = parse_auto(raw["auto"], f"{where}.auto")
    recipes_raw = raw.get("recipes")
    if not isinstance(recipes_raw, Mapping) or sorted(recipes_raw) != sorted(RECIPES):
        got = sorted(recipes_raw) if isinstance(recipes_raw, Mapping) else recipes_raw
        raise ConfigError(
            f"{where}.recipes={got!r}: strategy=auto needs exactly the recipes {', '.join(RECIPES)} "
            f"(conf/strategy/auto.yaml). Fix: strategy=auto, then override inside a recipe."
        )
    shared = ("init", "head_dropout", "shared_groups", "adapter", "final", "max_stage_epochs")
    common = {k: raw[k] for k in shared if k in raw}
    parse_strategy({**common, "stages": {"check": {"epochs": 1}}}, where)  # the shared keys, named strategy.<key>
    recipes = {}
    for name in RECIPES:
        recipe = recipes_raw[name]
        here = f"{where}.recipes.{name}"
        if not isinstance(recipe, Mapping) or list(recipe) != ["stages"]:
            raise ConfigError(f"{here}: expected {{stages: {{<stage>: {{…}}}}}}; got {recipe!r}. Fix: strategy=auto.")
        merged = common | {"name": name, "stages": recipe["stages"]}
        recipes[name] = dataclasses.replace(parse_strategy(merged, here), where=here)
    name = str(read_str(raw, "name", "auto", example="auto", where=where))
    return dataclasses.replace(recipes["lp_ft"], name=name, stages=(), auto=spec, recipes=recipes)
