"""The feature cache: same head as live features, reused across stages and jobs, keyed by what matters."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from tests.clitools import FAST
from transferlab.cli.common import compose_config
from transferlab.data import build_data
from transferlab.data.options import CommonOptions
from transferlab.run.engine import run
from transferlab.run.feature_cache import CachedFeatures, cache_key, cached_loaders

# efficientnet_lite0 with its real packaged weights, frozen; 3 epochs of a linear probe on digits
PROBE = ["strategy=feature_extraction", "strategy.stages.probe.epochs=3", "seed=2"]


def _run(run_dir: Path, cache_dir: Path | None, *overrides: str, enabled: bool = True) -> tuple[dict, dict]:
    cache = [f"feature_cache.dir={cache_dir}" if cache_dir else "feature_cache.dir=null"]
    cfg = compose_config([*FAST, *PROBE, *cache, f"feature_cache.enabled={str(enabled).lower()}", *overrides])
    metrics = run(cfg, run_dir)
    return metrics, load_file(str(run_dir / "model.safetensors"))


def _cache_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("feature cache")]


def test_cached_features_train_the_same_head_as_live_features(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="transferlab")
    live_metrics, live = _run(tmp_path / "live", None, enabled=False)
    assert _cache_lines(caplog) == ["feature cache: step probe computes features live: feature_cache.enabled=false"]
    cached_metrics, cached = _run(tmp_path / "cached", tmp_path / "cache")
    assert any("trains the head on cached features (computed" in m for m in _cache_lines(caplog))
    # same batches in the same order; features differ from live ones only by float rounding (batching)
    for name in ("head.weight", "head.bias"):
        torch.testing.assert_close(cached[name], live[name], rtol=1e-4, atol=1e-6)
    for name in live:  # the frozen backbone is untouched either way
        if name.startswith("backbone."):
            assert torch.equal(cached[name], live[name]), name
    assert cached_metrics["final"]["test/acc"] == pytest.approx(live_metrics["final"]["test/acc"], abs=1e-6)
    assert [r["trainable_params"] for r in cached_metrics["epochs"]] == [
        r["trainable_params"] for r in live_metrics["epochs"]
    ]


@pytest.mark.slow  # a real subprocess run: in CI's slow phase, keeping the README suite under 15 min
def test_the_cache_is_reused_by_the_next_job_and_recomputed_when_unreadable(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="transferlab")
    cache = tmp_path / "cache"
    _, first_model = _run(tmp_path / "a", cache)
    files = list(cache.glob("*.safetensors"))
    assert len(files) == 1
    caplog.clear()
    _, second_model = _run(tmp_path / "b", cache)  # another job of the same sweep
    assert any("cached features (disk" in m for m in _cache_lines(caplog)), _cache_lines(caplog)
    assert torch.equal(first_model["head.weight"], second_model["head.weight"])
    files[0].write_bytes(files[0].read_bytes()[:1000])  # truncated, e.g. a job killed while writing
    caplog.clear()
    _, third_model = _run(tmp_path / "c", cache)
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert any("(computed" in m for m in _cache_lines(caplog))
    assert torch.equal(first_model["head.weight"], third_model["head.weight"])


def test_augmentation_trains_on_live_features_and_says_why(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="transferlab")
    _run(tmp_path / "aug", tmp_path / "cache", "data.augment.rotate=10")
    assert any("live: augmentation is on" in m for m in _cache_lines(caplog)), _cache_lines(caplog)
    assert not list((tmp_path / "cache").glob("*.safetensors"))


def test_fine_tuning_steps_do_not_use_the_cache_but_the_probe_of_lp_ft_does(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="transferlab")
    cfg = compose_config(
        [*FAST, "strategy=lp_ft", "strategy.stages.probe.epochs=1", "strategy.stages.finetune.epochs=1",
         f"feature_cache.dir={tmp_path / 'cache'}"]
    )  # fmt: skip
    run(cfg, tmp_path / "run")
    lines = _cache_lines(caplog)
    assert len(lines) == 1 and "step probe trains the head on cached features" in lines[0], lines


def test_cache_key_follows_weights_data_selection_and_precision_not_batch_size(tiny_backbone):
    from transferlab.backbones.base import DataConfig

    data_cfg = {"name": "synthetic", "num_classes": 3, "image_size": 16, "batch_size": 8, "seed": 0}
    data = build_data(data_cfg, DataConfig(input_size=16))
    data.setup("fit")
    base = cache_key(tiny_backbone, data_cfg, data, "32-true")
    assert cache_key(tiny_backbone, {**data_cfg, "batch_size": 64}, data, "32-true") == base
    assert cache_key(tiny_backbone, {**data_cfg, "seed": 1}, data, "32-true") != base
    assert cache_key(tiny_backbone, data_cfg, data, "bf16-mixed") != base
    with torch.no_grad():
        next(tiny_backbone.parameters()).view(-1)[0] += 1e-6
    assert cache_key(tiny_backbone, data_cfg, data, "32-true") != base


def test_cached_features_are_held_on_the_training_gpu_when_data_on_device_allows():
    # meta stands in for a GPU (no GPU here): every batch op runs, and a host-side index would fail as on CUDA.
    tensors = {}
    for split, n in (("train", 10), ("val", 4), ("test", 4)):
        tensors[f"{split}.features"] = torch.randn(n, 6)
        tensors[f"{split}.labels"] = torch.arange(n) % 2
    cached = CachedFeatures("key", tensors, "memory", 0.0)
    meta = torch.device("meta")
    for setting, where in ((None, meta), (True, meta), (False, torch.device("cpu"))):
        data = SimpleNamespace(options=CommonOptions(batch_size=4, on_device=setting))
        loaders = cached_loaders(cached, data, meta)
        x, y = next(iter(loaders["train"]))
        assert (x.device, y.device) == (where, where) and x.shape == (4, 6), f"on_device={setting}: {x.device}"
    assert tensors["train.features"].device.type == "cpu", "the cache itself stays on the host"
    x, _ = next(iter(cached_loaders(cached, SimpleNamespace(options=CommonOptions(batch_size=4)), None)["val"]))
    assert x.device.type == "cpu", "no device given: the CPU"


def test_an_edited_image_under_the_same_config_gets_a_new_cache_key(tiny_backbone, tmp_path):
    import os

    from PIL import Image

    from transferlab.backbones.base import DataConfig

    root = tmp_path / "images"
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (40 * c, 10 * i, 0)).save(root / name / f"{i}.png")
    data_cfg = {"name": "image_folder", "root": str(root), "image_size": 8, "num_workers": 0, "augment": None}

    def key() -> str:
        data = build_data(data_cfg, DataConfig(input_size=8))
        data.setup("fit")
        return cache_key(tiny_backbone, data_cfg, data, "32-true")

    before = key()
    assert key() == before, "the same files: the same key"
    edited = root / "a" / "0.png"
    Image.new("RGB", (8, 8), (255, 255, 255)).save(edited)
    os.utime(edited, ns=(1, 1))  # a new mtime even on a coarse clock
    assert key() != before, "an edited image must not be served the old features"


def test_splits_are_cached_one_by_one_and_a_later_get_computes_only_the_missing(tiny_backbone, tmp_path, monkeypatch):
    from transferlab.backbones.base import DataConfig
    from transferlab.run.feature_cache import FeatureCache, compute_features

    data_cfg = {"name": "synthetic", "num_classes": 3, "image_size": 16, "batch_size": 8, "seed": 0}
    data = build_data(data_cfg, DataConfig(input_size=16))
    data.setup("fit")
    cpu = torch.device("cpu")
    first = FeatureCache(tmp_path).get(tiny_backbone, data, data_cfg, cpu, "32-true", splits=("train",))
    (file,) = tmp_path.glob("*.safetensors")
    assert first.source == "computed" and set(load_file(str(file))) == {"train.features", "train.labels"}
    calls: list[tuple[str, ...]] = []
    real = compute_features

    def counting(*args, splits, **kwargs):
        calls.append(splits)
        return real(*args, splits=splits, **kwargs)

    monkeypatch.setattr("transferlab.run.feature_cache.compute_features", counting)
    full = FeatureCache(tmp_path).get(tiny_backbone, data, data_cfg, cpu, "32-true")
    again = FeatureCache(tmp_path).get(tiny_backbone, data, data_cfg, cpu, "32-true")
    assert calls == [("val", "test")] and full.source == "disk+computed" and again.source == "disk", calls
    assert torch.equal(full.tensors["train.features"], first.tensors["train.features"])
    assert set(load_file(str(file))) == {f"{s}.{p}" for s in ("train", "val", "test") for p in ("features", "labels")}
    live = real(tiny_backbone, data, cpu, "32-true")
    for name, tensor in live.items():
        torch.testing.assert_close(again.tensors[name], tensor, msg=name)
