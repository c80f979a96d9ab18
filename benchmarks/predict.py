"""Predict: images/s of ``transferlab predict``'s batched path ÷ a hand-written batched ``torch.no_grad()`` loop.

Both sides label the same folder of JPEGs with the same model and batch size and produce the same thing (the
top-k probabilities of every image):

* **hand-written**: for each batch of paths, PIL opens and converts each image, torchvision's eval transform
  (resize the shorter side, centre-crop, to float, normalise: :func:`transferlab.data.transforms.eval_transform`)
  makes the tensor, ``torch.stack``, the network under ``torch.no_grad()``, softmax, ``topk`` — in one process,
  as one writes it by hand;
* **predict**: :func:`transferlab.deploy.predict.predict_files` — what the command runs after loading the
  model: decoding in DataLoader workers (the command's default: ``min(4, CPUs)``), uint8 batches normalised in
  the main process, ``torch.inference_mode()``, per-file error handling, rows streamed out.

The model is efficientnet_lite0 with the packaged ImageNet weights and a 10-class head (the head's values do
not change the cost) at its own 224 px preprocessing, built once in memory as ``load_for_inference`` builds
it. Variants alternate (hand, predict, hand, …) after one warm-up pass each; the median images/s is reported.
The command's fixed start-up (imports, reading the model file) is timed separately with the real CLI.

Usage (from the repository root)::

    python -m benchmarks.predict            # recorded numbers (≈ 3–4 min on 2 CPU cores)
    python -m benchmarks.predict --quick    # smoke run (< 1 min)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from benchmarks.common import THREADS_HELP, Samples, format_table, machine_line, ratio, result_line, set_threads
from benchmarks.decoded_cache import write_jpegs
from transferlab.backbones.registry import create_backbone
from transferlab.data.transforms import eval_transform
from transferlab.deploy.inputs import collect_inputs
from transferlab.deploy.loaded import Classifier, LoadedModel
from transferlab.deploy.predict import predict_files
from transferlab.deploy.preprocess import preprocessing_for

TARGET = 0.9


def build_model(classes: int = 10) -> LoadedModel:
    """efficientnet_lite0 (packaged weights) + a linear head, as ``load_for_inference`` would return it."""
    backbone = create_backbone("efficientnet_lite0", weights="package")
    network = Classifier(backbone, nn.Linear(backbone.num_features, classes)).eval().requires_grad_(False)
    pre = preprocessing_for({"name": "image_folder", "image_size": None}, backbone.data_config)
    names = [f"class_{i}" for i in range(classes)]
    return LoadedModel(None, network, pre, names, False, None)  # type: ignore[arg-type]


def hand_written(model: LoadedModel, files: list[Path], batch_size: int, top_k: int) -> int:
    """The loop one writes by hand; returns the number of images labelled."""
    transform = eval_transform(model.preprocessing.image_size, model.network.backbone.data_config)
    done = 0
    with torch.no_grad():
        for start in range(0, len(files), batch_size):
            batch = []
            for path in files[start : start + batch_size]:
                with Image.open(path) as img:
                    batch.append(transform(img.convert("RGB")))
            probs = torch.softmax(model.network(torch.stack(batch)), dim=1)
            values, indices = probs.topk(top_k, dim=1)
            rows = list(zip(values.tolist(), indices.tolist(), strict=True))  # what one writes out, per image
            done += len(rows)
    return done


def framework(model: LoadedModel, files: list[Path], batch_size: int, top_k: int, workers: int) -> int:
    """``predict_files`` as the command calls it; returns the number of images labelled."""
    rows = predict_files(model, files, batch_size=batch_size, top_k=top_k, workers=workers, device=torch.device("cpu"))
    return sum(1 for row in rows if row.error is None)


def cli_startup(folder: Path, model_dir: Path) -> float:
    """Seconds of ``transferlab predict`` on one image: imports, model file, one batch (the fixed cost)."""
    from transferlab.rundir.export import MODEL_FORMAT, export_model

    loaded = build_model()
    module = nn.Module()
    module.backbone, module.head = loaded.network.backbone, loaded.network.head
    config = {"data": {"name": "image_folder", "image_size": None}}
    meta = {"backbone_name": "efficientnet_lite0", "num_classes": 10, "class_names": loaded.class_names,
            "config": config, "format": MODEL_FORMAT, "preprocessing": loaded.preprocessing.to_dict()}  # fmt: skip
    model_dir.mkdir(parents=True, exist_ok=True)
    export_model(module, model_dir / "model.safetensors", meta)
    image = next(folder.rglob("*.jpg"))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "transferlab.cli.main", "predict", str(model_dir / "model.safetensors"), str(image)],
        check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer images and repeats")
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help=THREADS_HELP + " (here default 0: both sides alike)")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.repeats = 128, 1
    set_threads(args.threads)
    workers = min(4, os.cpu_count() or 1)
    model = build_model()
    with tempfile.TemporaryDirectory(prefix="transferlab-bench-predict-") as tmp:
        folder = Path(tmp) / "jpegs"
        write_jpegs(folder, args.images, classes=4)
        files = collect_inputs([str(folder)]).files
        hand, ours = Samples("hand-written"), Samples("predict")
        hand_written(model, files[: args.batch_size], args.batch_size, 5)  # warm-up: allocator, kernels
        framework(model, files[: args.batch_size], args.batch_size, 5, workers)
        for _ in range(args.repeats):
            for samples, fn in ((hand, hand_written), (ours, framework)):
                start = time.perf_counter()
                n = (
                    fn(model, files, args.batch_size, 5)
                    if fn is hand_written
                    else fn(model, files, args.batch_size, 5, workers)
                )
                samples.values.append(n / (time.perf_counter() - start))
        startup = cli_startup(folder, Path(tmp) / "model")
    print(machine_line())
    print(f"{args.images} JPEGs 500×375, efficientnet_lite0 224 px, batch {args.batch_size}, {workers} workers")
    rows = [(s.name, f"{s.median:.1f}", s.spread()) for s in (hand, ours)]
    print(format_table(["variant", "images/s (median)", "min–max"], rows))
    print(f"transferlab predict on one image, end to end (imports, model file, one batch): {startup:.2f} s")
    print(result_line("predict_vs_hand_loop", ratio(ours.median, hand.median), f">= {TARGET}"))


if __name__ == "__main__":
    main()
