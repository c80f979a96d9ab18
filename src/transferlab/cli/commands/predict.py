"""``transferlab predict RUN INPUT... [--output F] [--top-k K] [--tta]``: label new images with a trained model."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from transferlab.cli.common import HelpFormatter, fail, user_errors_exit

ORDER = 5
USAGE = "predict RUN INPUT... [--output FILE]"
SUMMARY = "label image files, folders, globs or a CSV of paths with a trained run's model"

EXAMPLES = """\
examples:
  transferlab predict outputs/train/runs/2026-11-24_10-00-00 photo.jpg
  transferlab predict RUN photos/ --output predictions.csv          # a folder, searched recursively
  transferlab predict RUN 'photos/**/*.png' --top-k 3 --output preds.jsonl
  transferlab predict RUN list.csv --path-column file               # a CSV of paths
  transferlab predict RUN/model.safetensors photos/ --tta           # average flips (ten-crop for photos)
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``predict`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab predict",
        description=(
            "Reload a trained model (a finished run's directory, its model.safetensors or a .ckpt) with its "
            "preprocessing and class names, and predict every input image: one row per image with its path, the "
            "predicted label (multi-label models: every label at or above the threshold tuned on the run's "
            "validation split, with its score) and the top-k probabilities. Inputs are image files, folders "
            "(searched recursively; files without an image suffix are counted and left out), globs, and CSV "
            "files of paths. A file that cannot be read gets a row saying why, and the count is printed at the "
            "end; it never stops the others. Rows go to --output (.csv or .jsonl; an existing file is kept unless "
            "--force) or, as CSV, to standard output. Runs on the first GPU when there is one."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run", help="run directory, model.safetensors or .ckpt")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs, CSV files of paths")
    parser.add_argument("--output", "-o", type=Path, help="write rows to this .csv or .jsonl file")
    parser.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    parser.add_argument("--top-k", type=int, default=5, help="probabilities of the k most likely classes (default 5)")
    parser.add_argument("--tta", action="store_true", help="average flips (and the ten-crop of cropped inputs)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    parser.add_argument("--workers", type=int, default=None, help="image-decoding workers (default: min(4, CPUs))")
    parser.add_argument("--path-column", help="the path column of CSV inputs (default: path, file, filename, image)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 … (default: the first GPU, else the CPU)")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    for flag, value in (("--top-k", args.top_k), ("--batch-size", args.batch_size)):
        if value < 1:
            fail(f"{flag} {value}: must be at least 1. Fix: {flag} {5 if flag == '--top-k' else 64}.")
    if args.workers is not None and args.workers < 0:
        fail(f"--workers {args.workers}: must be 0 (decode in this process) or more. Fix: --workers 2.")


def _device(name: str | None):
    import torch

    from transferlab.deploy.predict import default_device

    if name is None:
        return default_device()
    try:
        device = torch.device(name)
    except RuntimeError:
        fail(f"--device {name!r}: not a device name. Fix: --device cpu or --device cuda.")
    if device.type == "cuda" and not torch.cuda.is_available():
        fail(f"--device {name}: this machine has no CUDA GPU. Fix: --device cpu (or leave --device out).")
    return device


@user_errors_exit
def main(argv: list[str]) -> None:
    """Entry point of ``transferlab predict``."""
    args = build_parser().parse_args(argv)
    _check_args(args)
    import os

    from transferlab.deploy.inputs import collect_inputs
    from transferlab.deploy.source import model_source
    from transferlab.deploy.writers import check_output

    # the cheap checks first (no torch import yet): a bad --output, run or input costs a fraction of a second
    fmt = check_output(args.output, args.force)
    source = model_source(args.run)
    found = collect_inputs(args.inputs, args.path_column)
    if not found.files:
        fail(
            f"no image files among the inputs ({len(found.skipped)} files without an image suffix were left out, "
            f"e.g. {found.skipped[0] if found.skipped else '-'}). Fix: name image files, or folders of them."
        )
    from tqdm import tqdm

    from transferlab.deploy.loaded import load_for_inference
    from transferlab.deploy.predict import predict_files
    from transferlab.deploy.writers import RowWriter

    model = load_for_inference(source)
    device = _device(args.device)
    workers = min(4, os.cpu_count() or 1) if args.workers is None else args.workers
    workers = min(workers, max(0, len(found.files) // args.batch_size))  # no worker start-up for a few files
    kind = "multi-label, thresholds tuned on val" if model.multi_label else "single-label"
    print(
        f"transferlab predict: {model.path} ({model.saved.backbone_name}, {len(model.class_names)} classes, {kind}) "
        f"on {len(found.files)} images, {device}{', TTA' if args.tta else ''}",
        file=sys.stderr,
    )
    if found.skipped:
        skipped = len(found.skipped)
        print(f"  left out {skipped} files without an image suffix, e.g. {found.skipped[0]}", file=sys.stderr)
    writer = RowWriter(args.output, fmt, args.top_k, model.multi_label)
    failed: list[tuple[Path, str]] = []
    start = time.perf_counter()
    complete = False
    bar = tqdm(total=len(found.files), unit="img", file=sys.stderr, disable=None, leave=False)
    try:
        rows = predict_files(
            model, found.files, batch_size=args.batch_size, top_k=args.top_k, tta=args.tta,
            workers=workers, device=device, on_batch=bar.update,
        )  # fmt: skip
        for row in rows:
            writer.write(row)
            if row.error is not None:
                failed.append((row.path, row.error))
        complete = True
    finally:
        bar.close()
        writer.close(complete)
    seconds = time.perf_counter() - start
    done = len(found.files) - len(failed)
    where = f" → {args.output}" if args.output else ""
    rate = done / max(seconds, 1e-9)
    print(f"  predicted {done} images in {seconds:.1f} s ({rate:.1f} img/s){where}", file=sys.stderr)
    if failed:
        print(f"  {len(failed)} files could not be read (their rows say why), e.g.:", file=sys.stderr)
        for path, why in failed[:5]:
            print(f"    {path}: {why}", file=sys.stderr)
