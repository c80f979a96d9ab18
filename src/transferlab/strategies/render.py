"""Human-readable and JSON views of a :class:`Plan` (what ``transferlab plan`` prints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transferlab.strategies.plan import Plan
from transferlab.strategies.spec import StageSpec


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def format_plan(plan: Plan, backbone_name: str = "") -> str:
    """Render the plan as text: per stage and step the epochs, trainable groups, counts and per-epoch LRs.

    Args:
        plan: The compiled plan.
        backbone_name: Registry name of the backbone, for the header line.

    Returns:
        Multi-line text, no trailing newline.
    """
    s = plan.strategy
    lines = [
        f"strategy {s.name} (init={s.init}) · backbone {backbone_name or '?'} · "
        f"{_fmt_int(plan.total_params)} parameters (head {_fmt_int(plan.head_params)})",
        "layer groups (stem → top): " + ", ".join(f"{g.name} {_fmt_int(g.num_params)}" for g in plan.groups),
    ]
    lines += auto_lines(s.choice)
    n_stages = len(s.stages)
    for step in plan.steps:
        st = step.stage
        if step.step_index == 0:
            lines.append("")
            lines.append(
                f"stage {step.stage_index + 1}/{n_stages} {st.name}: {_epochs(st)} · bn={st.bn} · "
                f"{st.optimizer} wd={st.weight_decay:g} · {st.scheduler} warmup={st.warmup_epochs} · "
                f"carry={st.carry}"
            )
            extras = stage_extras(st)
            if extras:
                lines.append(f"  also: {extras}")
        first = step.global_first_epoch + 1
        last = step.global_first_epoch + step.epochs
        groups = ", ".join(step.trainable_groups) or "none"
        pct = 100.0 * step.trainable_params / max(step.total_params, 1)
        lines.append(
            f"  step {step.label}: epochs {first}-{last} · backbone groups training: {groups} · "
            f"trainable {_fmt_int(step.trainable_params)} / {_fmt_int(step.total_params)} ({pct:.2f}%)"
        )
        names = list(step.param_group_lrs)
        width = max(10, *(len(n) for n in names))
        lines.append("    epoch  " + "  ".join(n.ljust(width) for n in names))
        for k in range(step.epochs):
            cells = "  ".join(f"{step.param_group_lrs[n][k]:.3e}".ljust(width) for n in names)
            lines.append(f"    {step.global_first_epoch + k + 1:<5}  {cells}")
    lines += ["", final_line(plan)]
    return "\n".join(lines)


def auto_lines(choice: Mapping[str, Any] | None) -> list[str]:
    """``strategy=auto``'s choice: the recipe, why, what it read and the override that pins it."""
    if not choice:
        return []
    inputs = choice["inputs"]
    read = [
        f"{inputs['shots']:g} images/class (rarest {inputs['min_shots']})" if inputs.get("shots") is not None else "",
        f"{inputs['classes']} classes" if inputs.get("classes") else "",
        f"{inputs['image_size']} px vs {inputs['pretrain_size']} px pretraining" if inputs.get("size_ratio") else "",
        f"quick probe val acc {inputs['probe_acc']:.3f} in {inputs['probe_seconds']:.1f} s"
        if inputs.get("probe_acc") is not None
        else "",
    ]
    lines = [f"auto: chose recipe {choice['recipe']} (pin it: {choice['pin']})"]
    lines += [f"  because {reason}" for reason in choice["reasons"]]
    lines.append("  read: " + " · ".join(r for r in read if r))
    return lines


def _epochs(stage: StageSpec) -> str:
    if stage.patience is None:
        return f"{stage.epochs} epochs"
    delta = f" by more than {stage.min_delta:g}" if stage.min_delta else ""
    return f"up to {stage.epochs} epochs (ends after {stage.patience} epochs without a better val score{delta})"


def stage_extras(stage: StageSpec) -> str:
    """The stage's extras in one line (``""`` when none is on): ``lr=auto``, smoothing, mixup/CutMix, EMA."""
    parts = []
    if stage.head_init == "ridge":
        parts.append("head_init=ridge (the head starts as a closed-form ridge probe of the frozen features)")
    if stage.lr_auto:
        parts.append("lr=auto (a range test at the stage's start scales the LRs below, their ratios kept)")
    if stage.label_smoothing is not None:
        parts.append(f"label_smoothing={stage.label_smoothing:g}")
    if stage.mixes:
        mix = [f"mixup α={stage.mixup:g}"] if stage.mixup > 0 else []
        mix += [f"cutmix α={stage.cutmix:g}"] if stage.cutmix > 0 else []
        switch = f", cutmix share {stage.mix_switch_prob:g}" if len(mix) == 2 else ""
        parts.append(f"{' + '.join(mix)} (p={stage.mix_prob:g}{switch})")
    if stage.ema_decay is not None:
        parts.append(f"EMA of the weights (decay {stage.ema_decay:g}; kept if better on val)")
    return " · ".join(parts)


def final_line(plan: Plan) -> str:
    """What the run ends with (``strategy.final``)."""
    if plan.strategy.final == "last" or len(plan.strategy.stages) == 1:
        return f"final model: the last stage's carried weights (strategy.final={plan.strategy.final})"
    return (
        "final model: the stage whose carried weights score best on val, ties to the lower val/loss, then the "
        "earlier stage (strategy.final=best)"
    )


def plan_to_dict(plan: Plan, backbone_name: str = "") -> dict[str, Any]:
    """JSON-ready view of the plan: one document, its ``epochs`` one entry per epoch (``transferlab plan --json``).

    Args:
        plan: The compiled plan.
        backbone_name: Registry name of the backbone.

    Returns:
        A dict with ``strategy``, ``backbone``, ``groups``, ``total_params`` and ``epochs`` rows holding
        ``epoch`` (0-based over the run), ``stage``, ``step``, ``trainable_groups``, ``trainable_params`` and
        ``lr`` (param group → learning rate).
    """
    return {
        "strategy": plan.strategy.name,
        "final": plan.strategy.final,
        "auto": None if plan.strategy.choice is None else dict(plan.strategy.choice),
        "stages": [
            {"name": st.name, "epochs": st.epochs, "patience": st.patience, "regularisers": stage_extras(st)}
            for st in plan.strategy.stages
        ],
        "backbone": backbone_name,
        "groups": [{"name": g.name, "params": g.num_params} for g in plan.groups],
        "head_params": plan.head_params,
        "total_params": plan.total_params,
        "epochs": [
            {
                "epoch": epoch,
                "stage": step.stage.name,
                "step": step.label,
                "trainable_groups": list(step.trainable_groups),
                "trainable_params": step.trainable_params,
                "lr": lrs,
            }
            for epoch, step, _, lrs in plan.epoch_rows()
        ],
    }
