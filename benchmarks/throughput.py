"""Training throughput of the framework ÷ a hand-written PyTorch loop (same model, data, batch, precision).

Two cases:

* ``finetune``: every parameter trains (``strategy=finetune``, BatchNorm in training mode).
* ``head_only``: the backbone is frozen and features are computed live every epoch
  (``strategy=feature_extraction feature_cache.enabled=false``); a third, informational row runs the same
  stage with the feature cache on (the framework's default for this strategy).

The framework side is the real path: ``transferlab.run.engine.run(cfg, run_dir)`` (one ``Trainer.fit``
per plan step, TensorBoard logger on) with validation, per-stage tests, export, checkpoints and the progress
bar off; its epochs are timed by :class:`benchmarks.common.EpochTimer`, passed through the config. The hand
loop (:class:`HandLoop`) builds the same backbone with ``create_backbone`` plus an ``nn.Linear`` head,
iterates the framework's own train ``DataLoader`` and runs AdamW (same learning rates and weight decay) with
cross-entropy and nothing else.

Both sides run interleaved in the same process and time window: on a CPU the hand loop trains one batch after
every framework batch (from the timer's ``on_train_batch_end``; its time is taken out of the framework's
epoch), on a GPU one epoch after every framework epoch. The first epoch of every run is a warm-up and is not
counted.

Usage (from the repository root)::

    python -m benchmarks.throughput            # recorded numbers (≈ 8 min on 2 shared CPU cores)
    python -m benchmarks.throughput --quick    # smoke run (< 2 min)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from benchmarks.common import (
    THREADS_HELP,
    EpochTimer,
    Samples,
    format_table,
    machine_line,
    quiet,
    ratio,
    result_line,
    set_threads,
    sync,
)
from transferlab.backbones import create_backbone
from transferlab.cli.common import compose_config
from transferlab.run.assembly import assemble
from transferlab.run.engine import run
from transferlab.run.spec import parse_config
from transferlab.run.trainer import trainer_kwargs

TIMER = "+callbacks.extra.timer._target_=benchmarks.common.EpochTimer"
TARGETS = {"finetune": 0.97, "head_only": 0.90}
# timed epochs per run (after one warm-up epoch): (quick, default)
TIMED_EPOCHS = {"finetune": (2, 4), "head_only": (4, 10)}


def base_overrides(backbone: str, image_size: int, batch_size: int, output_root: str) -> list[str]:
    """Overrides shared by every framework run: no validation, tests, export, checkpoints or progress bar."""
    return [
        f"backbone={backbone}",
        "data=digits",
        f"data.image_size={image_size}",
        f"data.batch_size={batch_size}",
        "trainer.limit_val_batches=0",
        "trainer.limit_test_batches=1",  # the engine always tests once at the end (outside the timed epochs)
        "test_each_stage=false",
        "export=false",
        "callbacks=none",
        "trainer.enable_progress_bar=false",
        "feature_cache.dir=null",
        f"paths.output_root={output_root}",
        TIMER,
    ]


def case_overrides(case: str, epochs: int) -> tuple[list[str], str]:
    """Strategy overrides of a case and the name of its (single) stage."""
    if case == "finetune":
        return ["strategy=finetune", f"strategy.stages.finetune.epochs={epochs}"], "finetune"
    if case in ("head_only", "head_only_cached"):
        enabled = "true" if case == "head_only_cached" else "false"
        return [
            "strategy=feature_extraction",
            f"strategy.stages.probe.epochs={epochs}",
            f"feature_cache.enabled={enabled}",
        ], "probe"
    raise ValueError(f"unknown case {case!r}")


def _autocast(device: torch.device, precision: str) -> Any:
    if precision.startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast(device.type, dtype=torch.float16)
    return nullcontext()


def _split_decay(params: list[nn.Parameter], lr: float, wd: float) -> list[dict[str, Any]]:
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "lr": lr, "weight_decay": wd}, {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


class HandLoop:
    """The hand-written baseline: same backbone, data, batch size, precision and optimizer; nothing else.

    Same backbone (``create_backbone``), a new ``nn.Linear`` head, the framework's own train ``DataLoader``
    (from the run's own ``assemble``), AdamW with the stage's learning rates and weight decay (none on biases and
    norm weights, like the framework), cross-entropy, zero_grad/backward/step. For ``head_only`` the frozen
    backbone runs in eval mode under ``torch.no_grad``. No logging, metrics, scheduler or hooks.

    Args:
        cfg: The composed config of the framework run it is compared with.
        stage: Name of the strategy stage (learning rates, weight decay).
        head_only: Whether only the head trains.
    """

    def __init__(self, cfg: DictConfig, stage: str, head_only: bool) -> None:
        torch.manual_seed(int(cfg.seed))
        with quiet():
            data = assemble(parse_config(cfg)).data  # the framework's data module, set up for fitting
        self.loader = data.train_dataloader()
        raw = OmegaConf.to_container(cfg.trainer, resolve=True)
        self.precision = str(trainer_kwargs(raw)["precision"])  # type: ignore[arg-type]
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        spec = cfg.strategy.stages[stage]
        self.backbone = create_backbone(str(cfg.backbone.name), weights=cfg.backbone.weights).to(self.device)
        self.head = nn.Linear(int(self.backbone.num_features), int(data.num_classes)).to(self.device)
        self.head_only = head_only
        wd = float(spec.get("weight_decay", 0.0))
        groups = _split_decay(list(self.head.parameters()), float(spec.lr_head), wd)
        if head_only:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        else:
            groups += _split_decay(list(self.backbone.parameters()), float(spec.lr_backbone), wd)
            self.backbone.train()
        self.head.train()
        self.optimizer = torch.optim.AdamW(groups)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.startswith("16"))
        self.results: list[tuple[float, int]] = []
        self._batches: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None

    def _train_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        device = self.device
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with _autocast(device, self.precision):
            if self.head_only:
                with torch.no_grad():
                    features = self.backbone.forward_features(x)
            else:
                features = self.backbone.forward_features(x)
            loss = F.cross_entropy(self.head(features), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def epoch(self) -> None:
        """Train one epoch; append ``(seconds, images)`` to :attr:`results`."""
        sync()
        start, images = time.perf_counter(), 0
        with torch.enable_grad():
            for x, y in self.loader:
                self._train_batch(x, y)
                images += int(y.shape[0])
        sync()
        self.results.append((time.perf_counter() - start, images))

    def step(self) -> None:
        """Train one batch (the next of the current epoch; a new epoch starts when the loader is exhausted).

        The time of every call adds to the current epoch's entry in :attr:`results` (CPU only: no GPU sync).
        """
        start = time.perf_counter()
        batch = next(self._batches, None) if self._batches is not None else None
        if batch is None:  # first call, or the loader is exhausted: a new epoch
            self._batches = iter(self.loader)
            self.results.append((0.0, 0))
            batch = next(self._batches)
        with torch.enable_grad():
            self._train_batch(*batch)
        seconds, images = self.results[-1]
        self.results[-1] = (seconds + time.perf_counter() - start, images + int(batch[1].shape[0]))


def interleaved_run(cfg: DictConfig, run_dir: Path, hand: HandLoop, per_step: bool) -> tuple[list[float], list[float]]:
    """One framework run (``engine.run``) with the hand loop interleaved, per step or per epoch.

    Args:
        cfg: The framework run's config.
        run_dir: Its run directory.
        hand: The baseline, built for ``cfg``.
        per_step: One hand-loop batch after every framework batch (CPU); else one hand-loop epoch after every
            framework epoch (GPU, where a per-step sync would stall the framework).

    Returns:
        Images/s of every framework epoch and of every hand epoch, in time order.
    """
    EpochTimer.take()
    hand.results, hand._batches = [], None
    run_dir = run_dir.with_name(f"{run_dir.name}-{time.time_ns()}")  # a fresh run dir every time
    if per_step:
        EpochTimer.between_steps = hand.step
    else:
        EpochTimer.between_epochs = hand.epoch
    try:
        with quiet():
            run(cfg, run_dir)
    finally:
        EpochTimer.between_epochs = EpochTimer.between_steps = None
    framework = [epoch for timer in EpochTimer.take() for epoch in timer.epochs()]
    if len(framework) != len(hand.results):
        raise RuntimeError(f"{len(framework)} framework epochs but {len(hand.results)} hand epochs")
    return [n / s for s, n in framework], [n / s for s, n in hand.results]


def main(argv: list[str] | None = None) -> None:
    """Measure both cases and print the table, the ratios and the ``RESULT`` lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="half the data, one run, fewer epochs (< 2 min)")
    parser.add_argument("--repeats", type=int, default=None, help="framework runs per variant (default 2, quick 1)")
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs per run (after 1 warm-up epoch)")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cases", default="finetune,head_only", help="comma-separated subset of finetune,head_only")
    parser.add_argument(
        "--interleave",
        choices=("auto", "step", "epoch"),
        default="auto",
        help="run a hand-loop batch after every framework batch (step) or an epoch after every epoch (epoch); "
        "auto: step on CPU, epoch on GPU",
    )
    parser.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    repeats = args.repeats or (1 if args.quick else 2)
    per_step = args.interleave == "step" or (args.interleave == "auto" and not torch.cuda.is_available())
    warmup = 1
    print(machine_line())
    if not torch.cuda.is_available():
        print("device: cpu (no GPU: the GPU path of this benchmark is skipped; fp32 on both sides)")
    tmp = Path(tempfile.mkdtemp(prefix="tl-bench-throughput-"))
    base = base_overrides(args.backbone, args.image_size, args.batch_size, str(tmp))
    if args.quick:
        base.append("data.label_fraction=0.5")
    print(
        f"setup: {args.backbone} on digits {args.image_size} px{' (half the train split)' if args.quick else ''}, "
        f"batch {args.batch_size}; {repeats} run(s) per variant, each 1 warm-up + N timed epochs; the hand loop "
        f"runs interleaved, one {'batch after every framework batch' if per_step else 'epoch after every epoch'}"
    )
    rows, results = [], []
    for case in args.cases.split(","):
        timed = args.epochs or TIMED_EPOCHS[case][0 if args.quick else 1]
        strategy, stage = case_overrides(case, warmup + timed)
        variants = {f"{case}/framework": compose_config([*base, *strategy])}
        if case == "head_only":
            variants["head_only/framework+cache"] = compose_config(
                [*base, *case_overrides("head_only_cached", warmup + timed)[0]]
            )
        print(f"case {case} ({timed} timed epochs per run):", flush=True)
        for name, cfg in variants.items():
            fw, hd = Samples(name), Samples(f"{case}/hand")
            for r in range(repeats):
                hand = HandLoop(cfg, stage, head_only=case == "head_only")
                f_ips, h_ips = interleaved_run(cfg, tmp / "run", hand, per_step)
                fw.values += f_ips[warmup:]
                hd.values += h_ips[warmup:]
                print(f"  run {r + 1}/{repeats} {name:<26} " + " ".join(f"{v:8.1f}" for v in f_ips), flush=True)
                print(
                    f"  run {r + 1}/{repeats} {'  interleaved hand loop':<26} " + " ".join(f"{v:8.1f}" for v in h_ips)
                )
            paired = statistics.median(ratio(a, b) for a, b in zip(fw.values, hd.values, strict=True))
            value = ratio(fw.median, hd.median)
            rows.append([name, len(fw.values), fw.median, fw.spread(), hd.median, hd.spread(), value, paired])
            if name == f"{case}/framework":
                results.append((case, value))
    print()
    headers = ["variant", "epochs", "img/s", "min–max", "hand img/s", "hand min–max", "÷ hand", "paired ÷ hand"]
    print(format_table(headers, rows))
    print("img/s: median over timed epochs; ÷ hand: ratio of the medians; paired: median of per-epoch-pair ratios")
    shutil.rmtree(tmp, ignore_errors=True)
    print(machine_line())
    for case, value in results:
        print(result_line(f"throughput_{case}", value, f">= {TARGETS[case]}"))


if __name__ == "__main__":
    main()
