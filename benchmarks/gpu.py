"""GPU fine-tuning: images/s and model FLOP utilisation (MFU), synthetic on-GPU input vs the framework end to end.

For each model (torchvision resnet50 and efficientnet_b0, random weights, 224 px, all parameters training,
bf16 autocast) the variants run alternately (A, B, C, A, B, C, …) in one process:

* ``hand, channels-last``: backbone + ``nn.Linear`` head in channels-last memory format, fed one fixed batch
  of random images that lives on the GPU (no data loading at all), fused AdamW, cudnn benchmark on. This is
  the reference: what the GPU does when nothing but the model runs.
* ``hand, NCHW``: the same in the default memory format (the framework does not convert to channels-last).
* ``framework``: ``transferlab.run.engine.run`` with ``backbone=<model> backbone.weights=null
  data=synthetic data.image_size=224 strategy=finetune trainer=gpu`` (bf16-mixed, cudnn benchmark),
  TensorBoard logger on, validation/tests/export/checkpoints/progress bar off: its in-memory uint8 images are
  normalised per batch on the CPU, copied to the GPU and trained on by Lightning. Epochs are timed by
  ``benchmarks.common.EpochTimer`` (after one warm-up epoch).

FLOPs of one training step (forward + backward) are counted once with
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products; ``2 × MACs``), the backward
capped at 2 × the forward (torch 2.15 counts the backward of depthwise convolutions as if dense, ~20 × too
high for efficientnet_b0); MFU = FLOPs per image × images/s ÷ the GPU's dense bf16 peak (a small table, or
``--peak-tflops``).

Usage (from the repository root)::

    python -m benchmarks.gpu              # on a GPU machine (≈ 3–5 min on an H100)
    python -m benchmarks.gpu --quick      # fewer steps and epochs
    python -m benchmarks.gpu --cpu-smoke  # exercise every code path on the CPU at toy sizes (numbers meaningless)

Without a GPU (and without ``--cpu-smoke``) it prints ``no GPU: skipped`` and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import EpochTimer, Samples, format_table, machine_line, quiet, ratio, result_line, sync
from transferlab.backbones import create_backbone
from transferlab.cli.common import compose_config
from transferlab.run.engine import run

MODELS = {"resnet50": "tv:resnet50", "efficientnet_b0": "tv:efficientnet_b0"}
# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets; first match wins.
PEAK_BF16_TFLOPS = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM / HBM3
    ("A100", 312.0),
    ("L40S", 362.0),
    ("A10G", 70.0),
)
MFU_TARGET = "none: informational"


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by name (``None`` when not in the table)."""
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


class Classifier(nn.Module):
    """Backbone features → linear head (what the framework trains, without its bookkeeping)."""

    def __init__(self, backbone_name: str, num_classes: int) -> None:
        super().__init__()
        self.backbone = create_backbone(backbone_name, weights=None)
        self.head = nn.Linear(int(self.backbone.num_features), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.head(self.backbone.forward_features(x))


class SyntheticStep:
    """One training step on a fixed on-GPU batch: autocast, cross-entropy, backward, fused AdamW.

    Args:
        backbone_name: Registry name of the backbone.
        batch_size: Images per step.
        image_size: Square side in pixels.
        channels_last: Convert model and input to channels-last.
        device: Where to run.
        dtype: Autocast dtype (``None``: no autocast).
        num_classes: Head width.
    """

    def __init__(
        self,
        backbone_name: str,
        batch_size: int,
        image_size: int,
        channels_last: bool,
        device: torch.device,
        dtype: torch.dtype | None,
        num_classes: int = 10,
    ) -> None:
        torch.manual_seed(0)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = Classifier(backbone_name, num_classes).to(device).to(memory_format=fmt).train()
        self.x = torch.randn(batch_size, 3, image_size, image_size, device=device).to(memory_format=fmt)
        self.y = torch.randint(0, num_classes, (batch_size,), device=device)
        fused = device.type == "cuda"
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=0.01, fused=fused)
        self.device, self.dtype, self.batch_size = device, dtype, batch_size

    def _autocast(self) -> Any:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def __call__(self) -> None:
        """One step."""
        with self._autocast():
            loss = F.cross_entropy(self.model(self.x), self.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def flops(self) -> tuple[int, int]:
        """FLOPs of one forward and of its backward, counted by ``FlopCounterMode`` (optimizer step excluded)."""
        with FlopCounterMode(display=False) as forward, self._autocast():
            loss = F.cross_entropy(self.model(self.x), self.y)
        with FlopCounterMode(display=False) as backward:
            loss.backward()
        self.optimizer.zero_grad(set_to_none=True)
        return int(forward.get_total_flops()), int(backward.get_total_flops())

    def images_per_second(self, warmup: int, steps: int) -> float:
        """Throughput over ``steps`` timed steps after ``warmup`` steps."""
        for _ in range(warmup):
            self()
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            self()
        sync()
        return steps * self.batch_size / (time.perf_counter() - start)


def framework_images_per_second(overrides: list[str], run_dir: Path, warmup_epochs: int) -> list[float]:
    """Images/s of every timed epoch of one engine run."""
    EpochTimer.take()
    with quiet():
        run(compose_config(overrides), run_dir.with_name(f"{run_dir.name}-{time.time_ns()}"))
    epochs = [epoch for timer in EpochTimer.take() for epoch in timer.epochs()]
    return [n / s for s, n in epochs[warmup_epochs:]]


def framework_overrides(
    model: str, batch_size: int, image_size: int, train_samples: int, epochs: int, output_root: str, cpu: bool
) -> list[str]:
    """The framework's config for one model."""
    return [
        f"backbone={model}",
        "backbone.weights=null",
        "data=synthetic",
        f"data.image_size={image_size}",
        f"data.batch_size={batch_size}",
        f"data.num_samples.train={train_samples}",
        "data.num_samples.val=16",
        "data.num_samples.test=16",
        "strategy=finetune",
        f"strategy.stages.finetune.epochs={epochs}",
        "trainer=cpu" if cpu else "trainer=gpu",  # gpu: bf16-mixed where supported, cudnn benchmark on
        "trainer.limit_val_batches=0",
        "trainer.limit_test_batches=1",
        "test_each_stage=false",
        "export=false",
        "callbacks=none",
        "trainer.enable_progress_bar=false",
        "feature_cache.dir=null",
        f"paths.output_root={output_root}",
        "+callbacks.extra.timer._target_=benchmarks.common.EpochTimer",
    ]


def main(argv: list[str] | None = None) -> None:
    """Measure every model and print images/s, MFU and the end-to-end ÷ synthetic ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, epochs and repeats")
    parser.add_argument("--cpu-smoke", action="store_true", help="run on the CPU at toy sizes (tests the code)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=None, help="alternating repeats (default 3, quick 1)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the GPU (TFLOP/s)")
    args = parser.parse_args(argv)
    print(machine_line())
    if not torch.cuda.is_available() and not args.cpu_smoke:
        print("no GPU: skipped")
        return
    cpu = args.cpu_smoke
    device = torch.device("cpu" if cpu else "cuda")
    batch, size = (4, 32) if cpu else (args.batch_size, args.image_size)
    bf16 = not cpu and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else (None if cpu else torch.float16)
    warmup, steps = (1, 2) if cpu else ((5, 20) if args.quick else (15, 60))
    repeats = args.repeats or (1 if args.quick or cpu else 3)
    epochs, train_samples = (1, batch * 2) if cpu else ((2, batch * 16) if args.quick else (3, batch * 32))
    name = "cpu" if cpu else torch.cuda.get_device_name(0)
    peak = args.peak_tflops or (1.0 if cpu else peak_tflops(name))
    torch.backends.cudnn.benchmark = True
    print(
        f"setup: {batch} x {size} px, {dtype or 'fp32'} autocast, {repeats} alternating repeats; hand loops "
        f"{warmup} + {steps} steps; framework 1 warm-up + {epochs} epochs of {train_samples} images; "
        f"peak {peak} TFLOP/s{' (unknown GPU: pass --peak-tflops)' if peak is None else ''}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="tl-bench-gpu-"))
    rows, results = [], []
    for model in args.models.split(","):
        steps_by_variant = {
            "hand, channels-last": SyntheticStep(MODELS[model], batch, size, True, device, dtype),
            "hand, NCHW": SyntheticStep(MODELS[model], batch, size, False, device, dtype),
        }
        fwd, bwd = steps_by_variant["hand, NCHW"].flops()
        # torch 2.15's FlopCounterMode counts the backward of grouped (depthwise) convolutions as if they were
        # dense (pytorch/pytorch PR 183405): cap the backward at the exact 2 x forward of convs and matmuls.
        flops_per_image = (fwd + min(bwd, 2 * fwd)) / batch
        samples = {v: Samples(v) for v in [*steps_by_variant, "framework"]}
        overrides = framework_overrides(model, batch, size, train_samples, 1 + epochs, str(tmp), cpu)
        for r in range(repeats):
            for variant, step in steps_by_variant.items():
                samples[variant].values.append(step.images_per_second(warmup, steps))
            samples["framework"].values += framework_images_per_second(overrides, tmp / "run", 1)
            print(
                f"  {model} repeat {r + 1}/{repeats}: "
                + ", ".join(f"{v} {s.values[-1]:.0f}" for v, s in samples.items())
            )
        del steps_by_variant
        if not cpu:
            torch.cuda.empty_cache()
        best = samples["hand, channels-last"].median
        for variant, s in samples.items():
            mfu = flops_per_image * s.median / (peak * 1e12) if peak else float("nan")
            rows.append([model, variant, s.median, s.spread(), mfu, ratio(s.median, best)])
        results.append((model, fwd / batch, bwd / batch, flops_per_image, ratio(samples["framework"].median, best)))
    print()
    print(format_table(["model", "variant", "img/s", "min–max", "MFU", "÷ hand channels-last"], rows))
    for model, fwd, bwd, flops, _ in results:
        print(
            f"{model}: {flops / 1e9:.2f} GFLOP per image per training step used for MFU "
            f"(FlopCounterMode: forward {fwd / 1e9:.2f}, backward {bwd / 1e9:.2f}, capped at 2 x forward)"
        )
    shutil.rmtree(tmp, ignore_errors=True)
    print(machine_line())
    for model, *_, value in results:
        print(result_line(f"gpu_end_to_end_vs_synthetic_{model}", value, MFU_TARGET))


if __name__ == "__main__":
    main()
