"""The model card says what the run measured and how to use its model (rendering; the CLI tests run it)."""

from __future__ import annotations

from pathlib import Path

from transferlab.run.model_card import metrics_table, render_model_card, write_model_card

METRICS = {
    "run_dir": "/runs/my run",
    "backbone": "efficientnet_lite0",
    "data": "image_folder",
    "strategy": "lp_ft",
    "seed": 3,
    "optimized_metric": "val/acc",
    "total_params": 3_500_000,
    "seconds": 12.345,
    "final": {"test/acc": 0.9, "test/loss": 0.3, "val/loss": 0.25, "val/acc": 0.92},
    "stages": {
        "probe": {"epochs": 2, "planned_epochs": 2, "best_epoch": 1, "val/acc": 0.8, "seconds": 3.0},
        "finetune": {"epochs": 3, "planned_epochs": 6, "best_epoch": 4, "val/acc": 0.92, "seconds": 9.0},
    },
    "files": ["model.safetensors", "metrics.json"],
}
CONFIG = {"task_name": "photos", "backbone": {"weights": "package"}, "data": {"name": "image_folder", "root": "/p"}}
PRE = {"geometry": "crop", "resize": 256, "image_size": 224, "interpolation": "bicubic", "mode": "RGB",
       "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}  # fmt: skip


def test_metrics_table_puts_validation_beside_test():
    assert metrics_table(METRICS["final"]) == [
        "| metric | validation | test |",
        "|---|---:|---:|",
        "| acc | 0.9200 | 0.9000 |",
        "| loss | 0.2500 | 0.3000 |",
    ]


def test_card_names_data_classes_stages_and_the_exact_commands(tmp_path: Path):
    extra = {"class_names": [f"c{i}" for i in range(45)], "split_counts": {"train": 10, "val": 2, "test": 3},
             "preprocessing": PRE, "has_model": True, "version": "9.9"}  # fmt: skip
    text = render_model_card(METRICS, CONFIG, extra)
    assert text.startswith("# photos: efficientnet_lite0 on image_folder (lp_ft)")
    assert "- **Classes (45):** `c0`" in text and "… (5 more)" in text and "`c40`" not in text
    assert "| probe | 2 | 2 | 0.8000 | 3.0 |" in text  # the best epoch counted within its stage, from 1
    assert "| finetune | 3 of 6 | 3 | 0.9200 | 9.0 |" in text  # a stage stopped early says so
    assert "transferlab predict '/runs/my run' photos/" in text  # the run dir quoted for the shell
    assert "transferlab export '/runs/my run' --format onnx" in text
    assert "shorter side resized to 256 px (bicubic), centre-cropped to 224" in text
    assert "10 train, 2 val, 3 test images" in text and "transferlab 9.9 in 12.3 s, seed 3" in text
    path = write_model_card(tmp_path, text)
    assert path.read_text() == text and not list(tmp_path.glob(".*.tmp"))


def test_card_without_a_model_or_with_several_heads_says_what_to_do_instead():
    no_model = render_model_card(METRICS, CONFIG, {"has_model": False})
    assert "export=false" in no_model and "transferlab predict" not in no_model
    multi = render_model_card(METRICS, CONFIG, {"has_model": True, "multi_task": True})
    assert "multi-task model" in multi and "backbone=checkpoint" in multi and "transferlab predict" not in multi
