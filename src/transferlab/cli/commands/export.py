"""``transferlab export RUN --format onnx|torchscript``: one file with the preprocessing, the network and softmax."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from transferlab.cli.common import HelpFormatter, fail, user_errors_exit

ORDER = 6
USAGE = "export RUN --format onnx|torchscript"
SUMMARY = "write a trained run's model as ONNX or TorchScript (image in, probabilities out), checked at export"

EXAMPLES = """\
examples:
  transferlab export outputs/train/runs/2026-11-24_10-00-00 --format onnx          # RUN/model.onnx (+ .json)
  transferlab export RUN --format onnx --dynamic-batch --output deploy/digits.onnx
  transferlab export RUN --format torchscript                                     # RUN/model.pt
  transferlab export RUN --format onnx --input float --input-size 224 224           # fixed NCHW float input
  transferlab export RUN/checkpoints/finetune/best-epoch03.ckpt --format onnx      # beside the checkpoint
"""

#: Suffixes --output may have, by format (a .json would collide with the spec written beside the file).
SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth", ".torchscript")}


def build_parser() -> argparse.ArgumentParser:
    """The ``export`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab export",
        description=(
            "Write a trained model (a finished run's directory, its model.safetensors or a .ckpt) as one ONNX or "
            "TorchScript file that takes decoded images and returns probabilities: the run's preprocessing "
            "(resize / centre-crop of any image size, normalisation) and the softmax (sigmoid for multi-label "
            "models) are inside the graph, so a caller needs only the runtime. The input is uint8 (N, H, W, C), as "
            "image decoders give it, or with --input float (N, C, H, W) in [0, 1]; any height and width unless "
            "--input-size fixes them; one image per call unless --dynamic-batch. Before the file is kept it is run "
            "in its own runtime (onnxruntime, torch.jit.load) on the run's test images and compared with PyTorch: "
            "probabilities must agree within 1e-4 (ONNX) / 1e-5 (TorchScript), else nothing is written and the exit "
            "status is 1. A <file>.json beside it states the input, the preprocessing, the class names, the "
            "thresholds and the source model's sha256. --format onnx needs the export extra: "
            'pip install -e ".[export]".'
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run", help="run directory, model.safetensors or .ckpt")
    parser.add_argument("--format", "-f", required=True, choices=("onnx", "torchscript"), dest="fmt")
    parser.add_argument("--output", "-o", type=Path, help="the file to write (default: RUN/model.onnx or model.pt)")
    parser.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    parser.add_argument(
        "--input", choices=("uint8", "float"), default="uint8", dest="input_kind",
        help="uint8 (N, H, W, C) in [0, 255] (default) or float (N, C, H, W) in [0, 1]",
    )  # fmt: skip
    parser.add_argument("--dynamic-batch", action="store_true", help="any batch size (default: one image per call)")
    parser.add_argument(
        "--input-size", type=int, nargs=2, metavar=("H", "W"),
        help="fix the input's height and width (default: any size, resized and cropped in the graph)",
    )  # fmt: skip
    parser.add_argument(
        "--check-images", type=int, default=100, metavar="N",
        help="compare with PyTorch on at most N of the run's test images (default 100)",
    )  # fmt: skip
    return parser


def _check_args(args: argparse.Namespace) -> None:
    if args.check_images < 1:
        fail(f"--check-images {args.check_images}: must be at least 1. Fix: --check-images 100.")
    if args.input_size is not None and min(args.input_size) < 1:
        h, w = args.input_size
        fail(f"--input-size {h} {w}: both must be at least 1 pixel. Fix: --input-size 224 224, or leave it out.")


def _target(args: argparse.Namespace) -> Path:
    """Where the export goes; refuses a bad or existing one before any work."""
    from transferlab.deploy.export_spec import spec_path
    from transferlab.deploy.source import model_source
    from transferlab.rundir.layout import MODEL_FILE, ONNX_FILE, TORCHSCRIPT_FILE

    default = ONNX_FILE if args.fmt == "onnx" else TORCHSCRIPT_FILE
    if args.output is None:
        source = model_source(args.run)  # refuses unfinished runs and run dirs without a model
        # the run's model goes beside it under the layout's name; a checkpoint's export is named after it
        target = source.with_name(default) if source.name == MODEL_FILE else source.with_suffix(Path(default).suffix)
    else:
        target = args.output.expanduser()
        suffixes = SUFFIXES[args.fmt]
        if target.suffix.lower() not in suffixes:
            fail(
                f"--output {target}: a --format {args.fmt} file should end in {' or '.join(suffixes)}. Fix: "
                f"--output {target.with_suffix(suffixes[0])}."
            )
        if not target.parent.is_dir():
            fail(
                f"--output {target}: the folder {target.parent} does not exist. Fix: create it first "
                f"(mkdir -p {target.parent}), or name a file in an existing folder."
            )
        if target.is_dir():
            fail(f"--output {target}: is a folder. Fix: name a file in it, e.g. {target / default}.")
    if target.exists() and not args.force:
        fail(
            f"{target}: the file exists and is kept (with {spec_path(target).name} beside it). Fix: pass --force "
            "to overwrite it, or --output another file."
        )
    return target


@user_errors_exit
def main(argv: list[str]) -> None:
    """Entry point of ``transferlab export``."""
    args = build_parser().parse_args(argv)
    _check_args(args)
    from transferlab.deploy.export import ExportMismatchError, ExportOptions, check_runtime, write_export

    target = _target(args)
    versions = check_runtime(args.fmt)  # before the model is loaded: a missing package costs nothing
    from transferlab.deploy.loaded import load_for_inference
    from transferlab.deploy.source import model_source

    model = load_for_inference(model_source(args.run))
    options = ExportOptions(
        fmt=args.fmt, input_kind=args.input_kind, dynamic_batch=args.dynamic_batch,
        input_size=tuple(args.input_size) if args.input_size else None, check_limit=args.check_images,
    )  # fmt: skip
    kind = "multi-label" if model.multi_label else "single-label"
    print(
        f"transferlab export: {model.path} ({model.saved.backbone_name}, {len(model.class_names)} classes, {kind}) "
        f"→ {target} ({args.fmt}, input {args.input_kind})",
        flush=True,
    )
    try:
        result = write_export(model, target, options, versions)
    except ExportMismatchError as err:
        print(f"transferlab: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    check = result.verification
    runtime = "onnxruntime" if args.fmt == "onnx" else "torch.jit.load"
    size_mb = result.path.stat().st_size / 2**20
    print(f"  exported in {result.export_seconds:.1f} s; checked on {check.source} in {check.seconds:.1f} s:")
    print(
        f"    {runtime} vs PyTorch: max |Δprobability| {check.runtime.max_abs_diff:.3g} (bound {check.tolerance:g}), "
        f"top-1 agreement {check.runtime.top1_agreement:.2%}"
    )
    for what, comparison in (("the run's images", check.predict_real), ("synthetic images", check.predict_synthetic)):
        if comparison is not None:
            print(
                f"    PyTorch vs transferlab predict's preprocessing, {what}: max |Δprobability| "
                f"{comparison.max_abs_diff:.3g}, top-1 agreement {comparison.top1_agreement:.2%} (reported only)"
            )
    print(f"  wrote {result.path} ({size_mb:.1f} MiB) and {result.spec_path.name}")
    from transferlab.deploy.mlflow_upload import upload_export

    # a run trained with logger=mlflow gets its export in the same MLflow run (beside model.safetensors)
    line = upload_export(model.path.parent, [result.path, result.spec_path])
    if line:
        print(line)
