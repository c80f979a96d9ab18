"""The learning-rate range test of one stage (``transferlab lr-find``), over the stage's real param groups.

Leslie Smith's range test as fastai runs it: from ``min_lr`` to ``max_lr`` in ``num_steps`` exponential steps,
one optimizer step per training batch, the loss smoothed (β = 0.98, bias-corrected) and the test stopped once it
exceeds four times its minimum. What it sweeps is the *head's* rate; every other param group keeps its ratio to
the head as the stage's plan sets it (``lr_backbone``, ``lr_decay``), so the suggestion is a value for
``lr_head`` that moves the whole stage.

It runs in its own loop rather than in a ``Trainer.fit``: finders that run inside a fit beside finetuning
callbacks are known to break or to restore the wrong state (Lightning#14674, #6675). Here nothing but the
module, its step and its loaders is involved, and the weights, optimizer-free state and random states are put
back afterwards, so the finder leaves the run as it found it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from lightning.fabric.utilities.apply_func import move_data_to_device

from transferlab.model.optim import build_optimizer, build_param_groups
from transferlab.run.rng import rng_state, set_rng_state
from transferlab.strategies.plan import HEAD, StepPlan
from transferlab.strategies.schedule import lr_factor

SMOOTHING = 0.98
DIVERGED = 4.0


@dataclass
class RangeTest:
    """A range test's trace and suggestion.

    Attributes:
        stage: The stage tested.
        lrs: The head's learning rate at each step.
        losses: The raw training loss of each step.
        smoothed: The smoothed, bias-corrected loss of each step.
        ratios: Param group → its rate as a multiple of the head's (what the sweep keeps).
        suggestion: The suggested ``lr_head``: the steepest descent of the smoothed loss.
        minimum_tenth: A tenth of the rate at the smoothed loss's minimum (the other usual rule).
        stopped: Why the test ended (``max_lr reached`` or the divergence).
    """

    stage: str
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    suggestion: float = float("nan")
    minimum_tenth: float = float("nan")
    stopped: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the JSON beside the plot."""
        return dict(self.__dict__)


def range_test(
    module: Any,
    step: StepPlan,
    loader: Any,
    device: torch.device,
    *,
    num_steps: int = 100,
    min_lr: float = 1e-7,
    max_lr: float = 1.0,
) -> RangeTest:
    """Run the range test of ``step`` (the first step of its stage) and put everything back afterwards.

    Args:
        module: The staged module, already holding the weights the stage starts from; ``set_step`` is called here.
        step: The stage's first plan step (its trainable set, BatchNorm mode and param groups).
        loader: Training batches (images, or cached features for a frozen backbone; ``module.inputs`` says).
        device: Where to run.
        num_steps: Optimizer steps (batches, cycling the loader).
        min_lr: The head's first rate.
        max_lr: The head's last rate.

    Raises:
        ValueError: For ``min_lr`` ≥ ``max_lr``, a non-positive rate or fewer than 5 steps.
    """
    if not 0 < min_lr < max_lr or num_steps < 5:
        raise ValueError(f"need 0 < min_lr < max_lr and num_steps ≥ 5 (got {min_lr}, {max_lr}, {num_steps})")
    saved_weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
    saved_rng = rng_state()
    inputs = module.inputs
    module.to(device)
    module.set_step(step, inputs=inputs)
    module.train()
    optimizer = _optimizer(module, step)
    head_lr = next(g["lr"] for g in optimizer.param_groups if g["base_name"] == HEAD)
    result = RangeTest(step.stage.name, ratios={g["name"]: g["lr"] / head_lr for g in optimizer.param_groups})
    batches = _cycle(loader)
    average, best = 0.0, math.inf
    try:
        for i in range(num_steps):
            lr = min_lr * (max_lr / min_lr) ** (i / (num_steps - 1))
            for group in optimizer.param_groups:
                group["lr"] = lr * result.ratios[group["name"]]
            loss = _train_step(module, next(batches), device, optimizer)
            average = SMOOTHING * average + (1 - SMOOTHING) * loss
            smoothed = average / (1 - SMOOTHING ** (i + 1))
            result.lrs.append(lr)
            result.losses.append(loss)
            result.smoothed.append(smoothed)
            best = min(best, smoothed)
            if not math.isfinite(smoothed) or smoothed > DIVERGED * best:
                result.stopped = f"the loss diverged at lr_head {lr:.2e} (over {DIVERGED:g}× its minimum)"
                break
        else:
            result.stopped = f"max_lr {max_lr:g} reached"
    finally:
        module.load_state_dict(saved_weights)
        set_rng_state(saved_rng)
        module.task.reset("train")
    result.suggestion, result.minimum_tenth = suggest(result.lrs, result.smoothed)
    return result


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float, float]:
    """``(steepest descent, minimum / 10)`` of a smoothed loss trace (NaN when the trace is too short).

    The steepest point is where the loss falls fastest per decade of rate, looked for between the first tenth
    of the trace (noise of the warm start) and the minimum; the minimum is taken over the finite points.
    """
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    if len(finite) < 5:
        return float("nan"), float("nan")
    low = min(finite, key=lambda i: smoothed[i])
    start = max(1, len(lrs) // 10)
    slopes = [
        ((smoothed[i + 1] - smoothed[i - 1]) / (math.log10(lrs[i + 1]) - math.log10(lrs[i - 1])), i)
        for i in range(start, low)
        if i + 1 < len(lrs) and all(math.isfinite(smoothed[j]) for j in (i - 1, i + 1))
    ]
    steepest = lrs[min(slopes)[1]] if slopes else lrs[low] / 10
    return float(steepest), float(lrs[low] / 10)


def _optimizer(module: Any, step: StepPlan) -> torch.optim.Optimizer:
    """The step's optimizer with its named param groups, as ``configure_optimizers`` builds it (no scheduler)."""
    backbone = module.groups.trainable_params(step.trainable_groups, step.stage.bn, step.stage.params)
    groups = build_param_groups(step, [], backbone, heads=module.task.head_groups())
    head_lr = step.param_group_lrs[HEAD][0] / lr_factor(step.stage, step.first_epoch)
    groups += module.task.extra_param_groups(head_lr)
    return build_optimizer(step, groups)


def _train_step(module: Any, batch: Any, device: torch.device, optimizer: torch.optim.Optimizer) -> float:
    """One optimizer step on ``batch`` with the module's own loss (mixing and regularizer included)."""
    batch = module.on_after_batch_transfer(move_data_to_device(batch, device), 0)
    if module.mixer is not None and module.inputs == "images":
        x, y = batch
        batch = module.mixer(x, module.task.soft_targets(y))
    out = module.task.training_step(batch, module.features)
    loss = out.loss
    if module.regularizer is not None and out.inputs is not None and out.features is not None:
        loss = loss + module.regularizer(module, out.inputs, out.features)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _cycle(loader: Any) -> Iterator[Any]:
    while True:
        yield from loader


def plot(result: RangeTest, path: Any) -> None:
    """Write the loss against the head's rate (log scale) with both suggestions marked, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    ax.plot(result.lrs, result.losses, color="0.75", linewidth=0.8, label="loss")
    ax.plot(result.lrs, result.smoothed, color="tab:blue", linewidth=1.8, label="smoothed loss")
    for value, colour, name in (
        (result.suggestion, "tab:red", "suggested (steepest)"),
        (result.minimum_tenth, "tab:green", "minimum / 10"),
    ):
        if math.isfinite(value):
            ax.axvline(value, color=colour, linestyle="--", linewidth=1.2, label=f"{name}: {value:.2e}")
    finite = [v for v in result.smoothed if math.isfinite(v)]
    if finite:  # the divergence tail would squash the curve
        low, high = min(finite), min(max(finite), DIVERGED * min(finite))
        ax.set_ylim(low - 0.05 * (high - low + 1e-9), high + 0.1 * (high - low + 1e-9))
    ax.set_xscale("log")
    ax.set_xlabel("lr_head (other groups keep their ratio to it)")
    ax.set_ylabel("training loss")
    ax.set_title(f"learning-rate range test, stage {result.stage}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(path)
