"""Loading local weights: transferlab's own formats, foreign prefixes, reports, and refusal of bad files."""

from __future__ import annotations

import logging
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from transferlab.backbones import create_backbone, load_weights_file, read_weights_file
from transferlab.errors import WeightsError

ARCH = "tv:resnet18"


# ---- transferlab's own formats ----------------------------------------------------------------------------
def test_export_reloads_via_checkpoint_and_via_arch(tmp_path, resnet18, write_export, assert_same_tensors):
    run_dir = tmp_path / "run"
    path = write_export(run_dir, resnet18)

    from_run_dir = create_backbone("checkpoint", weights=run_dir)
    assert from_run_dir.name == ARCH, f"checkpoint must rebuild the recorded architecture, got {from_run_dir.name}"
    assert_same_tensors(from_run_dir, resnet18)

    from_file = create_backbone(ARCH, weights=str(path))
    assert_same_tensors(from_file, resnet18)


def test_export_report_ignores_head(tmp_path, resnet18, write_export):
    path = write_export(tmp_path / "run", resnet18)
    report = load_weights_file(create_backbone(ARCH), path)
    assert report.prefix == "backbone.", f"expected the export's 'backbone.' prefix stripped, got {report.prefix!r}"
    assert set(report.ignored) == {"head.weight", "head.bias"}, f"head tensors must be ignored: {report.ignored}"
    assert not report.missing and not report.unexpected, f"clean export must load fully: {report.summary()}"
    assert len(report.loaded) == len(resnet18.state_dict()), f"every tensor must load: {report.summary()}"
    assert "loaded" in report.summary() and str(path) in report.source, f"summary: {report.summary()}"


def test_lightning_ckpt_reloads_from_run_dir_and_file(tmp_path, resnet18, write_lightning_ckpt, assert_same_tensors):
    run_dir = tmp_path / "run"
    ckpt = write_lightning_ckpt(run_dir / "checkpoints" / "finetune" / "last.ckpt", resnet18)

    from_run_dir = create_backbone("checkpoint", weights=run_dir)  # no model.safetensors: falls back to last.ckpt
    assert from_run_dir.name == ARCH, f"architecture must come from hyper_parameters, got {from_run_dir.name}"
    assert_same_tensors(from_run_dir, resnet18)

    from_file = create_backbone(ARCH, weights=ckpt)
    assert_same_tensors(from_file, resnet18)
    assert read_weights_file(ckpt).backbone_name == ARCH, "hyper_parameters.backbone_name must be read"


def test_run_dir_prefers_exported_model(tmp_path, resnet18, write_export, write_lightning_ckpt):
    run_dir = tmp_path / "run"
    write_lightning_ckpt(run_dir / "checkpoints" / "probe" / "last.ckpt", resnet18)
    write_export(run_dir, resnet18)
    assert read_weights_file(run_dir).path.name == "model.safetensors", "model.safetensors must win over last.ckpt"


def test_checkpoint_of_packaged_lite_rebuilds_and_loads(tmp_path, write_export, assert_same_tensors):
    lite = create_backbone("efficientnet_lite0", weights="package")
    write_export(tmp_path / "run", lite, arch="efficientnet_lite0")
    reloaded = create_backbone("checkpoint", weights=tmp_path / "run")
    assert reloaded.name == "efficientnet_lite0", f"wrong architecture {reloaded.name}"
    assert reloaded.data_config == lite.data_config, "preprocessing of the packaged weights must be kept"
    assert_same_tensors(reloaded, lite)


def test_checkpoint_without_architecture_explains_fix(tmp_path, resnet18, write_export):
    write_export(tmp_path / "run", resnet18, arch=None)
    with pytest.raises(WeightsError, match=r"backbone=<arch> backbone.weights="):
        create_backbone("checkpoint", weights=tmp_path / "run")


# ---- foreign files: prefixes, reports ---------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "_orig_mod.backbone.", "model.backbone.", "encoder."])
@pytest.mark.parametrize("native", [True, False], ids=["torchvision-names", "transferlab-names"])
def test_prefix_stripping(tmp_path, resnet18, prefix, native, assert_same_tensors):
    # Foreign training scripts wrap the torchvision model (native names); transferlab's own keys carry "model.".
    state = {prefix + (k.removeprefix("model.") if native else k): v for k, v in resnet18.state_dict().items()}
    torch.save(state, tmp_path / "w.pt")
    backbone = create_backbone(ARCH)
    report = load_weights_file(backbone, tmp_path / "w.pt")
    assert report.prefix == prefix, f"expected prefix {prefix!r} stripped, got {report.prefix!r}"
    assert_same_tensors(backbone, resnet18)


def test_plain_torchvision_state_dict_loads_and_ignores_fc(tmp_path, resnet18, assert_same_tensors):
    # A torchvision file (e.g. a hub download copied by hand): native names, classifier included.
    state = {k.removeprefix("model."): v for k, v in resnet18.state_dict().items()}
    state |= {"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    torch.save(state, tmp_path / "resnet18.pth")
    backbone = create_backbone(ARCH, weights=tmp_path / "resnet18.pth")
    assert_same_tensors(backbone, resnet18)
    report = load_weights_file(create_backbone(ARCH), tmp_path / "resnet18.pth")
    assert sorted(report.ignored) == ["fc.bias", "fc.weight"], f"classifier must be ignored: {report.ignored}"


def test_missing_and_unexpected_are_reported(tmp_path, resnet18, caplog):
    state = dict(resnet18.state_dict())
    dropped = "model.layer4.1.bn2.weight"
    del state[dropped]
    state["model.layer5.0.conv1.weight"] = torch.zeros(3)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "partial.safetensors"))
    with caplog.at_level(logging.WARNING, logger="transferlab.backbones.weights"):
        report = load_weights_file(create_backbone(ARCH), tmp_path / "partial.safetensors")
    assert report.missing == (dropped,), f"missing must name exactly the dropped key: {report.missing}"
    assert report.unexpected == ("model.layer5.0.conv1.weight",), f"unexpected: {report.unexpected}"
    assert "MISSING" in caplog.text and dropped in caplog.text, f"a warning must name the key: {caplog.text!r}"
    with pytest.raises(WeightsError, match="MISSING"):
        load_weights_file(create_backbone(ARCH), tmp_path / "partial.safetensors", strict=True)


# ---- errors -------------------------------------------------------------------------------------------------
def test_wrong_architecture_lists_keys(tmp_path):
    other = create_backbone("tv:mobilenet_v3_small")
    torch.save(other.state_dict(), tmp_path / "mobilenet.pt")
    with pytest.raises(WeightsError) as info:
        create_backbone(ARCH, weights=tmp_path / "mobilenet.pt")
    message = str(info.value)
    assert "model.features.0.0.weight" in message, f"file keys must be listed: {message}"
    assert "model.conv1.weight" in message, f"expected backbone keys must be listed: {message}"
    assert "backbone=<arch>" in message, f"the fix must be named: {message}"


def test_shape_mismatch_lists_keys(tmp_path, resnet18):
    state = dict(resnet18.state_dict())
    state["model.conv1.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match=r"model\.conv1\.weight: file \(64, 3, 3, 3\) vs backbone \(64, 3, 7, 7\)"):
        create_backbone(ARCH, weights=tmp_path / "bad.pt")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ".ckpt"])
def test_truncated_file_is_named(tmp_path, resnet18, suffix):
    whole = tmp_path / f"whole{suffix}"
    state = {k: v.contiguous() for k, v in resnet18.state_dict().items()}
    save_file(state, str(whole)) if suffix == ".safetensors" else torch.save({"state_dict": state}, whole)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(WeightsError, match="truncated or corrupt") as info:
        create_backbone(ARCH, weights=cut)
    assert str(cut) in str(info.value), f"the message must name the file: {info.value}"


@pytest.mark.parametrize("content", [b"", b"not a weights file at all"])
def test_empty_or_garbage_file(tmp_path, content):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=r"junk\.pth"):
        create_backbone(ARCH, weights=path)


def test_missing_path_and_empty_dir(tmp_path):
    with pytest.raises(WeightsError, match="no such file or directory"):
        create_backbone(ARCH, weights=tmp_path / "nope.safetensors")
    with pytest.raises(WeightsError, match=r"no model\.safetensors"):
        create_backbone("checkpoint", weights=tmp_path)


class _Payload:
    """Unpickling this runs a shell command: exactly what loading untrusted weights must never do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("wrapped", [True, False], ids=["inside-state-dict", "bare-pickle"])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, wrapped):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if wrapped:
        torch.save({"conv1.weight": torch.zeros(1), "extra": _Payload(str(marker))}, path)
    else:
        path.write_bytes(pickle.dumps(_Payload(str(marker)), protocol=2))
    with pytest.raises(WeightsError, match="refused") as info:
        create_backbone(ARCH, weights=path)
    assert str(path) in str(info.value), f"the message must name the file: {info.value}"
    assert not marker.exists(), "the pickled payload ran: weights must be loaded with weights_only=True"


def test_torch_load_always_uses_weights_only(tmp_path, resnet18, monkeypatch, write_lightning_ckpt):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    ckpt = write_lightning_ckpt(tmp_path / "last.ckpt", resnet18)
    create_backbone("checkpoint", weights=ckpt)
    create_backbone("efficientnet_lite0", weights="package")
    assert len(calls) >= 2, f"torch.load was expected for the .ckpt and the packaged .pth, saw {calls}"
    assert all(c is True for c in calls), f"torch.load called without weights_only=True: {calls}"


def test_real_export_function_round_trips(tmp_path, resnet18, assert_same_tensors):
    # The format is a contract with transferlab.rundir.export: use the writer itself, not a copy of it.
    export = pytest.importorskip("transferlab.rundir.export")
    module = torch.nn.Module()
    module.backbone = resnet18
    module.head = torch.nn.Linear(resnet18.num_features, 4)
    path = export.export_model(module, tmp_path / "model.safetensors", {"backbone_name": ARCH, "num_classes": 4})
    reloaded = create_backbone("checkpoint", weights=path)
    assert reloaded.name == ARCH, f"architecture read from the export's metadata: {reloaded.name}"
    assert_same_tensors(reloaded, resnet18)
