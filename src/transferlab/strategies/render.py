"""Human-readable and JSON views of a :class:`Plan` (what ``transferlab plan`` prints)."""

from __future__ import annotations

from typing import Any

from transferlab.strategies.plan import Plan


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
    n_stages = len(s.stages)
    for step in plan.steps:
        st = step.stage
        if step.step_index == 0:
            lines.append("")
            lines.append(
                f"stage {step.stage_index + 1}/{n_stages} {st.name}: {st.epochs} epochs · bn={st.bn} · "
                f"{st.optimizer} wd={st.weight_decay:g} · {st.scheduler} warmup={st.warmup_epochs} · "
                f"carry={st.carry}"
            )
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
    return "\n".join(lines)


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
