"""``transferlab eval RUN [overrides]``: test a finished run or checkpoint on its data config or another one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from transferlab.cli.common import HelpFormatter, compose_config, fail, user_errors_exit
from transferlab.errors import ConfigError

ORDER = 4
USAGE = "eval RUN [overrides]"
SUMMARY = "test a finished run, model.safetensors or .ckpt on its data or another data config"

EXAMPLES = """\
examples:
  transferlab eval outputs/train/runs/2026-11-24_10-00-00           # the run's own test split
  transferlab eval outputs/train/runs/2026-11-24_10-00-00/model.safetensors data.seed=1
  transferlab eval outputs/.../checkpoints/finetune/last.ckpt
  transferlab eval RUN data=image_folder data.root=~/photos --output eval.json
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``eval`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="transferlab eval",
        description=(
            "Reload a finished run (its directory, model.safetensors or a .ckpt) with the resolved config it "
            "saved, and test it. Overrides change the data: 'data.<key>=value' edits the run's own data "
            "config, 'data=<option>' swaps in another data config from conf/."
        ),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run", help="run directory, model.safetensors or .ckpt")
    parser.add_argument("overrides", nargs="*", help="data overrides (data=<option>, data.<key>=<value>)")
    parser.add_argument("--output", type=Path, help="also write the metrics to this JSON file")
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


def _parse(value: str):
    import yaml

    return yaml.safe_load(value)


#: How a saved run is tested here: on one device of this machine, whatever it was trained on; no callbacks.
EVAL_TRAINER = {"accelerator": "auto", "devices": 1, "enable_progress_bar": False, "enable_model_summary": False}
EVAL_CALLBACKS = {"checkpoint": {"save_last": False, "save_top_k": 0}, "extra": {}}


@user_errors_exit
def main(argv: list[str]) -> None:
    """Entry point of ``transferlab eval``."""
    args = build_parser().parse_args(argv)
    import tempfile

    from transferlab.run.assembly import assemble, for_saved_model
    from transferlab.run.engine import quiet_known_warnings
    from transferlab.run.spec import parse_config
    from transferlab.run.trainer import build_trainer
    from transferlab.rundir.reload import load_saved_model

    quiet_known_warnings()
    saved = load_saved_model(args.run)
    data_cfg = _data_config(saved.config, args.overrides)
    # The run's own config (the same parsers as train), rebuilt as the saved architecture on this machine.
    config = parse_config(saved.config | {"trainer": EVAL_TRAINER, "callbacks": EVAL_CALLBACKS, "resume": False})
    parts = assemble(for_saved_model(config, saved.backbone_name, data_cfg), load_weights=False, data="test")
    module = parts.module
    predicted = module.task.describe()["num_classes"]
    if predicted != saved.num_classes:
        fail(
            f"{saved.path}: the model predicts {saved.num_classes} classes but data '{data_cfg.get('name')}' "
            f"has {predicted}. Fix: evaluate on data with the same classes (e.g. data.classes=...)."
        )
    result = module.load_state_dict(saved.state_dict, strict=False)
    missing = [k for k in result.missing_keys if k.startswith(("backbone.", "head."))]
    if missing:
        fail(f"{saved.path}: missing tensors {missing[:5]}; the file does not match {saved.backbone_name}.")
    with tempfile.TemporaryDirectory(prefix="transferlab-eval-") as scratch:  # nothing is written near the run
        trainer = build_trainer(parts.config.trainer.kwargs, 1, None, [], scratch)
        trainer.test(module, datamodule=parts.data, verbose=False)
    tested = module.epoch_metrics.get("test", {})
    metrics = {"model": str(saved.path), "data": data_cfg.get("name"), **tested}
    print(f"transferlab eval: {saved.path}")
    print("  " + "  ".join(f"{k} {v:.4f}" for k, v in tested.items()))
    if args.output:
        args.output.write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"  metrics written to {args.output}", file=sys.stderr)
