"""``strategy=auto``: a recipe chosen from the data, by a documented rule (docs/strategies.md, "strategy=auto").

The inputs (:class:`AutoInputs`) are the training images per class (the median over classes), the number of
classes, the input size against the size the weights were pretrained at, and — where the rule needs it — the
validation accuracy of a quick linear probe on the frozen features (``run/quick_probe.py``). The rule:

1. ``strategy.auto.recipe`` set → that recipe (the user's choice wins).
2. shots ≤ ``few_shots`` → ``probe``: the whole budget trains a new head on frozen features. With a handful of
   images per class, fine-tuning millions of weights overfits them (docs/peers.md: at 5 shots per class every
   fine-tuning recipe lost to the probe).
3. shots ≥ ``many_shots`` → ``finetune``: every layer adapts from the start, the head faster (enough images to
   move the backbone; docs/peers.md: with every digit's label, fine-tuning beat the probe by 9 points).
4. in between, the quick probe decides (its accuracy above chance, ``(acc − 1/C) / (1 − 1/C)``): at least
   ``probe_good`` → ``probe`` (the frozen features already separate the classes; fine-tuning can only lose);
   below ``probe_poor`` → ``finetune`` (the features fit the task poorly, the backbone must move);
   otherwise → ``lp_ft`` (probe, then fine-tune; the run keeps whichever stage scores better on val).
5. The input size: when the images are at least ``full_size`` × the pretraining size, the fine-tuning stages of
   the chosen recipe get layer-wise decay ``lr_decay`` (earlier groups learn slower: their features were learnt
   at this scale and transfer); smaller inputs leave every group at one rate (early layers must adapt to it).

``strategies/auto_choice.py`` applies the rule to the parsed strategy; the choice — recipe, inputs, reasons —
travels with the resolved ``StrategySpec`` (``choice``): the log, ``plan``, ``metrics.json``
(``strategy_choice``) and the model card show it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transferlab.config.readers import check_keys, read_bool, read_float, read_int
from transferlab.errors import ConfigError

#: The recipes the rule chooses from (each one is ``strategy.recipes.<name>``).
RECIPES = ("probe", "lp_ft", "finetune")
_KEYS = ("recipe", "few_shots", "many_shots", "probe_check", "probe_good", "probe_poor", "full_size", "lr_decay")


@dataclass(frozen=True)
class AutoSpec:
    """The rule's settings (``strategy.auto``); see the module docstring for what each one decides."""

    recipe: str | None = None
    few_shots: int = 8
    many_shots: int = 50
    probe_check: bool = True
    probe_good: float = 0.9
    probe_poor: float = 0.3
    full_size: float = 0.75
    lr_decay: float = 0.8


@dataclass(frozen=True)
class AutoInputs:
    """What the rule reads from the data and the backbone (``None``: not known here, with ``notes`` saying why).

    Attributes:
        shots: Median training images per class (multi-label: positives per label).
        min_shots: The rarest class's training images.
        classes: Classes (labels) of the head.
        image_size: The side of the images the model sees.
        pretrain_size: The side the weights were pretrained at.
        probe_acc: Validation accuracy of the quick linear probe.
        probe_seconds: What the probe cost.
        notes: Why an input is missing.
    """

    shots: float | None = None
    min_shots: int | None = None
    classes: int | None = None
    image_size: int | None = None
    pretrain_size: int | None = None
    probe_acc: float | None = None
    probe_seconds: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def size_ratio(self) -> float | None:
        """Input side / pretraining side."""
        if self.image_size is None or not self.pretrain_size:
            return None
        return self.image_size / self.pretrain_size

    @property
    def probe_score(self) -> float | None:
        """The probe's accuracy above chance: 0 = chance, 1 = perfect."""
        if self.probe_acc is None or not self.classes or self.classes < 2:
            return None
        chance = 1.0 / self.classes
        return (self.probe_acc - chance) / (1.0 - chance)

    def as_dict(self) -> dict[str, Any]:
        """The inputs as recorded (``metrics.json``'s ``strategy_choice.inputs``)."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "notes"}
        ratio, score = self.size_ratio, self.probe_score
        out["size_ratio"] = None if ratio is None else round(ratio, 4)
        out["probe_score"] = None if score is None else round(score, 4)
        out["notes"] = list(self.notes)
        return out


def parse_auto(raw: Any, where: str = "strategy.auto") -> AutoSpec:
    """Validate ``strategy.auto``.

    Raises:
        ConfigError: On an unknown key or a bad value (named, with the fix).
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}={raw!r}: expected the rule's settings, e.g. {{recipe: null, few_shots: 8}}. Fix: strategy=auto."
        )
    check_keys(raw, _KEYS, where)
    recipe = raw.get("recipe")
    if recipe is not None and recipe not in RECIPES:
        raise ConfigError(
            f"{where}.recipe={recipe!r}: choose one of {', '.join(RECIPES)}, or null (chosen from the data). "
            f"Fix: {where}.recipe=lp_ft."
        )
    few = read_int(raw, "few_shots", 8, minimum=0, where=where)
    many = read_int(raw, "many_shots", 50, minimum=1, where=where)
    if many <= few:  # type: ignore[operator]
        raise ConfigError(
            f"{where}.many_shots={many}: must be above {where}.few_shots={few} (the band between them is the "
            f"quick probe's to decide). Fix: {where}.many_shots={max(int(few) + 1, 50)}."  # type: ignore[arg-type]
        )
    good = read_float(raw, "probe_good", 0.9, where=where)
    poor = read_float(raw, "probe_poor", 0.3, where=where)
    if poor > good:  # type: ignore[operator]
        raise ConfigError(
            f"{where}.probe_poor={poor}: must not be above {where}.probe_good={good}. Fix: {where}.probe_poor=0.3."
        )
    return AutoSpec(
        recipe=recipe,
        few_shots=int(few),  # type: ignore[arg-type]
        many_shots=int(many),  # type: ignore[arg-type]
        probe_check=bool(read_bool(raw, "probe_check", True, where=where)),
        probe_good=float(good),  # type: ignore[arg-type]
        probe_poor=float(poor),  # type: ignore[arg-type]
        full_size=float(read_float(raw, "full_size", 0.75, high=100.0, low_open=True, where=where)),  # type: ignore[arg-type]
        lr_decay=float(read_float(raw, "lr_decay", 0.8, low_open=True, where=where)),  # type: ignore[arg-type]
    )


def needs_probe(spec: AutoSpec, inputs: AutoInputs) -> bool:
    """Whether the rule reads the quick probe for these inputs (only in the band between the shot bounds)."""
    if spec.recipe is not None or not spec.probe_check or inputs.shots is None:
        return False
    return spec.few_shots < inputs.shots < spec.many_shots


def decide(spec: AutoSpec, inputs: AutoInputs) -> tuple[str, list[str]]:
    """The recipe and the reasons, in the rule's order (module docstring)."""
    if spec.recipe is not None:
        return spec.recipe, [f"strategy.auto.recipe={spec.recipe} (set by you)"]
    s = inputs.shots
    if s is None:
        return "lp_ft", ["training images per class unknown here (no training split read): lp_ft, the middle recipe"]
    shots = f"{s:g} training images per class (median over {inputs.classes} classes)"
    if s <= spec.few_shots:
        return "probe", [f"{shots} ≤ few_shots={spec.few_shots}: too few to fine-tune the backbone; probe only"]
    if s >= spec.many_shots:
        return "finetune", [f"{shots} ≥ many_shots={spec.many_shots}: enough to fine-tune every layer from the start"]
    band = f"{shots} is between few_shots={spec.few_shots} and many_shots={spec.many_shots}"
    score = inputs.probe_score
    if score is None:
        why = "; ".join(inputs.notes) or "strategy.auto.probe_check=false"
        return "lp_ft", [f"{band}; no quick probe ({why}): lp_ft (the run keeps the better stage on val)"]
    probe = f"the quick linear probe scores val acc {inputs.probe_acc:.3f} ({score:.2f} of the way from chance to 1)"
    if score >= spec.probe_good:
        return "probe", [band, f"{probe} ≥ probe_good={spec.probe_good:g}: the frozen features suffice; probe only"]
    if score < spec.probe_poor:
        return "finetune", [band, f"{probe} < probe_poor={spec.probe_poor:g}: the features fit poorly; fine-tune all"]
    return "lp_ft", [band, f"{probe}: probe, then fine-tune; the run keeps the better stage on val"]
