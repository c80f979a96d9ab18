"""``strategy=auto`` applied: the recipe :func:`~transferlab.strategies.auto.decide` names, made concrete.

The chosen recipe's :class:`StrategySpec` is returned under the strategy's own name with the size rule applied
(layer-wise decay on its fine-tuning stages when the inputs are near the pretraining size) and the ``choice``
record attached.
"""

from __future__ import annotations

import dataclasses

from transferlab.strategies.auto import AutoInputs, AutoSpec, decide
from transferlab.strategies.spec import StrategySpec


def _with_size_rule(spec: AutoSpec, recipe: StrategySpec, inputs: AutoInputs) -> tuple[StrategySpec, str | None]:
    """``recipe`` with layer-wise decay on its fine-tuning stages when the inputs are near the pretraining size."""
    ratio = inputs.size_ratio
    tuning = [s for s in recipe.stages if s.trainable == "all" and s.lr_decay is None]
    if ratio is None or not tuning:
        return recipe, None
    size = f"inputs {inputs.image_size} px are {ratio:.2f} × the pretraining size {inputs.pretrain_size} px"
    if ratio < spec.full_size:
        return recipe, f"{size} (< full_size={spec.full_size:g}): every backbone group at one rate"
    stages = tuple(
        dataclasses.replace(s, lr_decay=spec.lr_decay) if any(s is t for t in tuning) else s for s in recipe.stages
    )
    reason = f"{size} (≥ full_size={spec.full_size:g}): lr_decay={spec.lr_decay:g} (earlier groups slower)"
    return dataclasses.replace(recipe, stages=stages), reason


def choose(strategy: StrategySpec, inputs: AutoInputs) -> StrategySpec:
    """The concrete strategy ``strategy=auto`` runs for these inputs, with its ``choice`` record attached.

    Args:
        strategy: The parsed ``auto`` strategy (``auto`` and ``recipes`` set, no stages of its own).
        inputs: What the data and the backbone say.

    Returns:
        The chosen recipe's spec, named ``auto``; ``choice`` holds recipe, inputs, reasons and the pinning override.
    """
    spec, recipes = strategy.auto, strategy.recipes
    assert spec is not None and recipes is not None, "choose() needs strategy=auto"
    name, reasons = decide(spec, inputs)
    chosen, size_reason = _with_size_rule(spec, recipes[name], inputs)
    if size_reason is not None:
        reasons.append(size_reason)
    choice = {
        "recipe": name,
        "forced": spec.recipe is not None,
        "reasons": reasons,
        "inputs": inputs.as_dict(),
        "rule": dataclasses.asdict(spec),
        "pin": f"strategy.auto.recipe={name}",
    }
    return dataclasses.replace(chosen, name=strategy.name, auto=None, recipes=None, choice=choice)
