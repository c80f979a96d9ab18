"""``transferlab eval RUN [overrides]``: test a finished run or checkpoint on its data config or another one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from transferlab.cli.common import HelpFormatter, compose_config, fail, user_errors_exit
from transferlab.cli.eval_target import plan_target
from transferlab.errors import ConfigError
from transferlab.rundir.split import SavedSplit, SplitCheck, check_split, find_run_dir, read_split, run_split_keys

ORDER = 4
USAGE = "eval RUN [overrides]"
SUMMARY = "test a finished run, model.safetensors or .ckpt on its data or another data config"

EXAMPLES = """\
examples:
  transferlab eval outputs/train/runs/2026-11-24_10-00-00           # the run's own test split
  transferlab eval outputs/train/runs/2026-11-24_10-00-00/model.safetensors
  transferlab eval outputs/.../checkpoints/finetune/last.ckpt
  transferlab eval RUN data=image_folder "data.root='~/photos'" --output eval.json   # other data
  transferlab eval RUN --force                                     # replace RUN/eval/test/
  transferlab eval ~/models/model.safetensors --output-dir /tmp/eval   # a model outside a run dir
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``eval`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab eval",
        description=(
            "Reload a finished run (its directory, model.safetensors or a .ckpt) with the resolved config it "
            "saved, and test it. Overrides change the data: 'data.<key>=value' edits the run's own data "
            "config, 'data=<option>' swaps in another data config from conf/. The run's test split is the run's: "
            "overrides that only re-split the run's own data (data.seed, the fractions, the shots) are put back "
            "to the run's values; other data is labelled as such, and refused when any of its samples were in the "
            "run's training or validation split (split.json), unless --allow-overlap. "
            "It also interprets the errors (per-class precision/recall/F1, the most-confused pairs, the top losses "
            "and their images) and writes them into <run>/eval/<label>/ (label 'test' for the run's own test "
            "split, else the overrides), with TensorBoard events there; never over an earlier evaluation without "
            "--force. A model outside a run dir writes only with --output-dir (else the tables are printed)."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run", help="run directory, model.safetensors or .ckpt")
    parser.add_argument("overrides", nargs="*", help="data overrides (data=<option>, data.<key>=<value>)")
    parser.add_argument("--output", type=Path, help="also write the metrics to this JSON file")
    parser.add_argument(
        "--allow-overlap",
        action="store_true",
        help="score data that holds samples the run trained or validated on (labelled with the counts)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="write the interpretation's files here instead of <run>/eval/<label>/ (e.g. a read-only run dir)",
    )
    parser.add_argument("--force", action="store_true", help="replace the files of an earlier evaluation")
    parser.add_argument(
        "--top-k", type=int, default=16, help="how many top losses (images in top_losses.png; default 16)"
    )
    return parser


def _data_config(saved_config: dict, overrides: list[str]) -> dict:
    for item in overrides:
        if "=" not in item or not item.lstrip("+~").startswith("data"):
            raise ConfigError(f"override {item!r}: eval takes data overrides only (data=<option> or data.<key>=v).")
    if any(o.split("=", 1)[0] == "data" for o in overrides):
        cfg = compose_config([f"seed={saved_config.get('seed', 0)}", *overrides])
        return OmegaConf.to_container(cfg.data, resolve=True)  # type: ignore[return-value]
    data = OmegaConf.create(saved_config["data"])
    OmegaConf.set_struct(data, True)
    try:
        for item in overrides:
            key, value = item.split("=", 1)
            OmegaConf.update(data, key[len("data.") :], _parse(value))
    except OmegaConfBaseException as err:
        first = f"{item}: {err}".splitlines()[0]
        raise ConfigError(f"{first} Fix: check the key against the run's config.yaml.") from None
    return OmegaConf.to_container(data, resolve=True)  # type: ignore[return-value]


def _saved_split(path: Path) -> SavedSplit | None:
    run_dir = find_run_dir(Path(path))
    try:
        return read_split(run_dir) if run_dir is not None else None
    except ValueError as err:
        fail(f"{err} Fix: evaluate a run dir written by transferlab train, or delete the broken split.json.")


def _check_split(split: SavedSplit | None, data: object, allow_overlap: bool) -> tuple[SplitCheck | None, str]:
    """How the test samples relate to the run's splits, and the label of the evaluation (``own``, ``other``…)."""
    members = getattr(data, "members", None)
    if split is None or members is None:
        return None, "unknown (the run saved no split membership: overlap with its training data is not checked)"
    check = check_split(split, members["test"])
    if check.own:
        return check, "own"
    if (check.in_train or check.in_val) and not allow_overlap:
        fail(
            f"{check.in_train} of the {check.tested} samples to test on were in the run's training split and "
            f"{check.in_val} in its validation split: a score on them is not a test score. Fix: evaluate on the "
            "run's own test split (no data overrides), on data the run never saw, or pass --allow-overlap to "
            "score them anyway (the output then says how many overlap)."
        )
    return check, "other"


def _check_label_kind(saved: bool, data: bool, path: Path, data_cfg: dict) -> None:
    """Refuse a multi-label model on single-label data and the reverse (the head's outputs mean other things)."""
    if saved == data:
        return
    kinds = {True: "multi-label (several labels per image)", False: "single-label (one class per image)"}
    fail(
        f"{path}: the model is {kinds[saved]} but data '{data_cfg.get('name')}' is {kinds[data]}. "
        f"Fix: evaluate on data of the model's kind{' (data.multi_label=true)' if saved else ''}."
    )


def _parse(value: str):
    import yaml

    return yaml.safe_load(value)


#: How a saved run is tested here: on one device of this machine, whatever it was trained on; no callbacks.
EVAL_TRAINER = {"accelerator": "auto", "devices": 1, "enable_progress_bar": False, "enable_model_summary": False}
EVAL_LOGGER = {"tensorboard": False}
EVAL_CALLBACKS = {"checkpoint": {"save_last": False, "save_top_k": 0}, "extra": {}}


@user_errors_exit
def main(argv: list[str]) -> None:
    """Entry point of ``transferlab eval``."""
    args = build_parser().parse_args(argv)
    if args.top_k < 1:
        fail(f"--top-k {args.top_k}: must be at least 1. Fix: --top-k 16.")
    # where the interpretation goes, refused before anything is loaded when it would overwrite an earlier one
    target = plan_target(Path(args.run), args.overrides, args.output_dir, args.force)
    import tempfile

    from transferlab.cli.eval_interpretation import interpret_test
    from transferlab.run.assembly import assemble, for_saved_model
    from transferlab.run.engine import quiet_known_warnings
    from transferlab.run.spec import parse_config
    from transferlab.run.test_outputs import TestOutputsRecorder
    from transferlab.run.trainer import build_trainer
    from transferlab.rundir.reload import load_saved_model

    quiet_known_warnings()
    saved = load_saved_model(args.run)
    split = _saved_split(saved.path)
    data_cfg, restored = run_split_keys(_data_config(saved.config, args.overrides), saved.config.get("data") or {})
    if restored:
        keys = ", ".join(f"data.{k}" for k in restored)
        print(
            f"transferlab eval: note: {keys} only re-split the run's own data, which would put the run's training "
            "samples into the test set; the run's own split is used. To test on other data, name it "
            "(data=<option>, data.root=...).",
            file=sys.stderr,
        )
    # The run's own config (the same parsers as train), rebuilt as the saved architecture on this machine.
    # no experiment loggers: eval logs nothing to the run's trackers (and needs no MLflow where the run had one)
    overrides = {"trainer": EVAL_TRAINER, "callbacks": EVAL_CALLBACKS, "resume": False, "logger": EVAL_LOGGER}
    config = parse_config(saved.config | overrides)
    parts = assemble(for_saved_model(config, saved.backbone_name, data_cfg), load_weights=False, data="test")
    module = parts.module
    predicted = module.task.describe()["num_classes"]
    if predicted != saved.num_classes:
        fail(
            f"{saved.path}: the model predicts {saved.num_classes} classes but data '{data_cfg.get('name')}' "
            f"has {predicted}. Fix: evaluate on data with the same classes (e.g. data.classes=...)."
        )
    _check_label_kind(saved.multi_label, bool(module.task.describe().get("multi_label", False)), saved.path, data_cfg)
    result = module.load_state_dict(saved.state_dict, strict=False)
    missing = [k for k in result.missing_keys if k.startswith(("backbone.", "head."))]
    if missing:
        fail(f"{saved.path}: missing tensors {missing[:5]}; the file does not match {saved.backbone_name}.")
    parts.data.setup("test")
    check, where = _check_split(split, parts.data, args.allow_overlap)
    # Lightning's own files go to a temp dir; what eval keeps is the interpretation, written where target says
    with tempfile.TemporaryDirectory(prefix="transferlab-eval-") as scratch:
        recorder = TestOutputsRecorder()  # the logits the task scores, per sample, in the same pass
        trainer = build_trainer(parts.config.trainer.kwargs, 1, None, [recorder], scratch)
        trainer.test(module, datamodule=parts.data, verbose=False)
    tested = module.epoch_metrics.get("test", {})
    metrics: dict = {"model": str(saved.path), "data": data_cfg.get("name"), "split": where}
    if check is not None:
        metrics.update({"tested_samples": check.tested, "in_train": check.in_train, "in_val": check.in_val})
    metrics.update(tested)
    print(f"transferlab eval: {saved.path}")
    print(f"  on {check.label() if check is not None else where}")
    print("  " + "  ".join(f"{k} {v:.4f}" for k, v in tested.items()))
    thresholds = saved.thresholds  # loaded with the head (head.thresholds): never tuned on the data tested here
    if thresholds is not None:
        metrics["thresholds"] = thresholds
        shown = ", ".join(f"{name} {value:.3g}" for name, value in list(thresholds.items())[:8])
        more = ", …" if len(thresholds) > 8 else ""
        print(f"  at the thresholds tuned on the run's validation split: {shown}{more}")
    header = {k: metrics[k] for k in ("model", "data", "split")}
    header |= {"tested_on": check.label() if check is not None else where, "metrics": tested}
    interpret_test(target, recorder, parts, header, args.top_k)
    if args.output:
        args.output.write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"  metrics written to {args.output}", file=sys.stderr)
