"""``transferlab export`` from outside: the file runs in its own runtime and agrees with PyTorch on real images.

The fast tests export the session's photo-folder run (``folder_run``, tests/deploy/conftest.py) in-process; the
slow ones train their own runs and call the command line in subprocesses, as a user would: a synthetic run
(float input, multi-label) and the real EfficientNet-Lite0 on the digits, checked on every test image.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.clitools import FAST, run_cli
from transferlab.cli.commands.export import main as export_main
from transferlab.deploy.export import ExportOptions, build_graph
from transferlab.deploy.loaded import load_for_inference


def _export(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``transferlab export ARGS`` in this process: ``(exit status, stdout, stderr)``."""
    try:
        export_main(list(args))
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _test_images(run_dir: Path) -> list[np.ndarray]:
    """The run's test photos, decoded as a caller of the export would: PIL, RGB, uint8 (H, W, 3)."""
    members = json.loads((run_dir / "split.json").read_text())["members"]["test"]
    assert members, "the run has a test split"
    return [np.array(Image.open(p).convert("RGB")) for p in members]


def _reference(run_dir: Path, options: ExportOptions):
    """The PyTorch module of the export, as ``uint8 batch → probabilities`` (what the file must agree with)."""
    graph = build_graph(load_for_inference(run_dir), options)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return graph(torch.from_numpy(batch)).numpy()

    return run


@pytest.fixture
def run_copy(folder_run, tmp_path: Path) -> Path:
    """A copy of the session's folder run (its split.json still names the photos), to export into."""
    run_dir, _ = folder_run
    return Path(shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("tensorboard")))


def test_onnx_export_of_a_photo_run_agrees_with_pytorch_on_every_test_image(run_copy, capsys):
    ort = pytest.importorskip("onnxruntime")  # in the dev extra: runs in CI
    code, out, err = _export(capsys, str(run_copy), "--format", "onnx", "--dynamic-batch", "--check-images", "8")
    assert code == 0, err
    path, spec_path = run_copy / "model.onnx", run_copy / "model.onnx.json"
    assert path.is_file() and spec_path.is_file(), out
    assert "onnxruntime vs PyTorch: max |Δprobability|" in out and "top-1 agreement 100.00%" in out
    assert not [p for p in run_copy.iterdir() if p.name.startswith(".model.onnx")], "no temp file left"

    spec = json.loads(spec_path.read_text())
    model = load_for_inference(run_copy)
    assert spec["input"] | {"how_to_make": None} == {
        "name": "image", "dtype": "uint8", "layout": "NHWC", "shape": ["batch", "height", "width", 3],
        "dynamic_dims": spec["input"]["dynamic_dims"], "range": [0, 255], "colour_mode": "RGB", "how_to_make": None,
    }  # fmt: skip
    assert set(spec["input"]["dynamic_dims"]) == {"batch", "height", "width"}
    assert spec["output"]["name"] == "probabilities" and spec["output"]["shape"] == ["batch", 3]
    assert spec["class_names"] == model.class_names == ["blue", "green", "red"]
    assert spec["multi_label"] is False and spec["thresholds"] is None
    pre = spec["preprocessing_in_graph"]
    assert {k: pre[k] for k in model.preprocessing.to_dict()} == json.loads(json.dumps(model.preprocessing.to_dict()))
    assert pre["geometry"] == "crop" and "centre-crop" in " ".join(pre["steps"])
    source = spec["source_model"]
    assert source["path"] == str((run_copy / "model.safetensors").resolve()) and len(source["sha256"]) == 64
    assert spec["versions"]["transferlab"] and spec["versions"]["torch"] == torch.__version__
    assert isinstance(spec["opset"], int) and spec["opset"] >= 18  # antialiased Resize needs opset 18
    check = spec["verification"]
    assert check["runtime_vs_pytorch"]["max_abs_diff"] <= 1e-4 and check["tolerance"] == 1e-4

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, outp.name) == ("image", "tensor(uint8)", "probabilities")
    assert inp.shape == ["batch", "height", "width", 3]
    reference = _reference(run_copy, ExportOptions("onnx", dynamic_batch=True))
    images = _test_images(run_copy)
    assert len({im.shape for im in images}) > 1, "the photos have several sizes: the graph resizes them itself"
    for image in images:  # every test photo, at its own size, one per call
        got = session.run(None, {"image": image[None]})[0]
        expected = reference(image[None])
        assert np.abs(got - expected).max() <= 1e-4
        assert got.argmax() == expected.argmax()
        assert got.sum() == pytest.approx(1.0, abs=1e-5)
    same = np.stack([np.asarray(Image.fromarray(im).resize((40, 30))) for im in images[:7]])
    assert len(same) == 7
    batched = session.run(None, {"image": same})[0]
    singles = np.concatenate([session.run(None, {"image": im[None]})[0] for im in same])
    assert batched.shape == (7, 3) and np.abs(batched - singles).max() <= 1e-5


def test_torchscript_export_keeps_an_existing_file_unless_force_then_agrees_with_pytorch(run_copy, capsys):
    path = run_copy / "model.pt"
    path.write_bytes(b"an earlier export")
    code, out, err = _export(capsys, str(run_copy), "--format", "torchscript", "--check-images", "8")
    assert code == 2 and str(path) in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == b"an earlier export", "the existing file is kept, byte for byte"
    assert not (run_copy / "model.pt.json").exists()

    code, out, err = _export(capsys, str(run_copy), "--format", "torchscript", "--check-images", "8", "--force")
    assert code == 0, err
    assert "torch.jit.load vs PyTorch" in out
    spec = json.loads((run_copy / "model.pt.json").read_text())
    assert spec["export_format"] == "torchscript" and spec["input"]["shape"] == [1, "height", "width", 3]
    assert spec["verification"]["runtime_vs_pytorch"]["max_abs_diff"] <= 1e-5
    module = torch.jit.load(str(path))
    reference = _reference(run_copy, ExportOptions("torchscript"))
    for image in _test_images(run_copy):
        with torch.no_grad():
            got = module(torch.from_numpy(image[None])).numpy()
        expected = reference(image[None])
        assert np.abs(got - expected).max() <= 1e-5 and got.argmax() == expected.argmax()
    with pytest.raises(Exception, match="batches of 1"):  # a fixed batch is checked in the TorchScript graph too
        module(torch.zeros(2, 30, 40, 3, dtype=torch.uint8))


def test_a_failed_check_exits_1_and_leaves_the_earlier_file_and_no_temp_file(run_copy, capsys, monkeypatch):
    import transferlab.deploy.export as export

    def fake_export(model, path, options):  # a file that runs but answers wrongly: the check must catch it
        path.write_bytes(b"wrong graph")
        return {}

    monkeypatch.setattr(export, "export_file", fake_export)
    monkeypatch.setattr(export, "load_runner", lambda path, fmt: lambda x: np.zeros((len(x), 3), np.float32))
    target = run_copy / "model.onnx"
    target.write_bytes(b"an earlier export")
    code, out, err = _export(capsys, str(run_copy), "--format", "onnx", "--force", "--check-images", "2")
    assert code == 1, (out, err)
    assert "disagrees with PyTorch" in err and "not kept" in err
    assert target.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in run_copy.iterdir() if "onnx" in p.name) == ["model.onnx"]


def test_refusals_are_one_clear_line_before_any_work(folder_run, tmp_path, capsys, monkeypatch):
    run_dir, _ = folder_run
    missing = tmp_path / "nowhere" / "m.onnx"
    code, _, err = _export(capsys, str(run_dir), "--format", "onnx", "--output", str(missing))
    assert code == 2 and "does not exist" in err and "mkdir -p" in err and not missing.parent.exists()

    code, _, err = _export(capsys, str(run_dir), "--format", "onnx", "--output", str(tmp_path / "m.pt"))
    assert code == 2 and "should end in .onnx" in err

    code, _, err = _export(capsys, str(run_dir), "--format", "tflite")
    assert code == 2 and "invalid choice: 'tflite'" in err.strip().splitlines()[-1]

    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints" / "finetune").mkdir(parents=True)
    (unfinished / "checkpoints" / "finetune" / "last.ckpt").write_bytes(b"x")
    code, _, err = _export(capsys, str(unfinished), "--format", "torchscript")
    assert code == 2 and "did not finish" in err and "transferlab resume" in err
    assert list(unfinished.iterdir()) == [unfinished / "checkpoints"]

    import transferlab.deploy.loaded as loaded

    def never(path):
        raise AssertionError("the model was loaded before the runtime was checked")

    monkeypatch.setattr(loaded, "load_for_inference", never)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an install without the extra looks like
    code, _, err = _export(capsys, str(run_dir), "--format", "onnx", "--output", str(tmp_path / "m.onnx"))
    assert code == 2, err
    assert "onnxruntime" in err and 'pip install -e ".[export]"' in err and "'transferlab[export]'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "m.onnx").exists()


# ---------------------------------------------------------------- slow: real runs, the real command line


def _train(base: Path, name: str, *overrides: str) -> Path:
    run_dir = base / name
    run_cli("train", *FAST, *overrides, f"hydra.run.dir={run_dir}", cwd=base)
    return run_dir


SYNTHETIC = ["data=synthetic", "backbone=small_cnn", "backbone.weights=null", "strategy=finetune"]


@pytest.mark.slow
def test_float_input_and_multi_label_exports_from_the_command_line(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    one = ["+strategy.max_stage_epochs=1", "data.num_samples.test=32"]
    single = _train(tmp_path, "single", *SYNTHETIC, *one)
    run_cli("export", str(single), "--format", "onnx", "--input", "float", "--input-size", "45", "29",
            "--check-images", "16")  # fmt: skip
    spec = json.loads((single / "model.onnx.json").read_text())
    assert spec["input"]["dtype"] == "float32" and spec["input"]["layout"] == "NCHW"
    assert spec["input"]["shape"] == [1, 3, 45, 29] and spec["input"]["range"] == [0.0, 1.0]
    assert spec["input"]["dynamic_dims"] == {} and "45x29" in spec["input"]["how_to_make"]
    assert spec["verification"]["source"].startswith("16 test images of the run's synthetic data")
    session = ort.InferenceSession(str(single / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 45, 29]
    rng = np.random.default_rng(0)
    uint8 = rng.integers(0, 256, size=(1, 45, 29, 3), dtype=np.uint8)
    got = session.run(None, {"image": uint8.transpose(0, 3, 1, 2).astype(np.float32) / 255})[0]
    expected = _reference(single, ExportOptions("onnx"))(uint8)  # the uint8 graph of any size, same pixels
    assert np.abs(got - expected).max() <= 1e-4 and got.sum() == pytest.approx(1.0, abs=1e-5)
    for wrong in ((2, 3, 45, 29), (1, 3, 32, 32)):  # batch fixed to 1 without --dynamic-batch; size fixed
        with pytest.raises(Exception, match=r"(?i)dimension|shape"):
            session.run(None, {"image": np.zeros(wrong, np.float32)})

    multi = _train(tmp_path, "multi", *SYNTHETIC, *one, "data.multi_label=true", "data.num_classes=4")
    proc = run_cli("export", str(multi), "--format", "torchscript", "--dynamic-batch", "--check-images", "16")
    assert "multi-label" in proc.stdout
    spec = json.loads((multi / "model.pt.json").read_text())
    model = load_for_inference(multi)
    assert spec["multi_label"] is True and "sigmoid" in spec["output"]["meaning"]
    assert spec["preprocessing_in_graph"]["steps"][-1] == "sigmoid per label"
    assert spec["thresholds"] == dict(zip(model.class_names, model.thresholds.tolist(), strict=True))
    assert list(spec["thresholds"]) == spec["class_names"] == [f"label_{i}" for i in range(4)]
    module = torch.jit.load(str(multi / "model.pt"))
    for n in (1, 7):
        batch = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        with torch.no_grad():
            probs = module(torch.from_numpy(batch)).numpy()
            x = model.preprocessing.normalize(torch.from_numpy(batch).permute(0, 3, 1, 2))
            expected = torch.sigmoid(model.network(x)).numpy()  # predict's path: already at image_size
        assert probs.shape == (n, 4) and np.abs(probs - expected).max() <= 1e-5
        assert not np.allclose(probs.sum(1), 1.0), "independent sigmoids, not a softmax"


@pytest.mark.slow
def test_digits_efficientnet_lite0_exports_agree_with_pytorch_on_every_test_image(tmp_path):
    """The default-ish model (packaged ImageNet weights, digits, a linear probe): the issue's target.

    At 32 px rather than the default job's 64 (a quarter of the compute in CI's slow phase); the graph, the
    weights and the 359 test images are the same, and the README's numbers were measured at 64 px.
    """
    ort = pytest.importorskip("onnxruntime")
    from transferlab.deploy.check_images import check_images

    run_dir = tmp_path / "digits"
    run_cli(
        "train", "backbone=efficientnet_lite0", "data=digits", "strategy=feature_extraction", "data.image_size=32",
        "strategy.stages.probe.epochs=1", "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    model = load_for_inference(run_dir)
    checks = check_images(model, limit=10_000)
    tests = checks.images[: checks.real]
    assert len(tests) == json.loads((run_dir / "split.json").read_text())["counts"]["test"] == 359
    batch = np.stack(tests)
    reference = _reference(run_dir, ExportOptions("onnx", dynamic_batch=True))(batch)
    accuracy = json.loads((run_dir / "metrics.json").read_text())["final"]["test/acc"]
    labels = [s[1] for s in load_test_labels(run_dir)]
    assert (reference.argmax(1) == np.array(labels)).mean() == pytest.approx(accuracy, abs=1e-6)

    for fmt, bound in (("onnx", 1e-4), ("torchscript", 1e-5)):
        # the export's own check on its default 100 test images (+ 4 of other sizes); this test compares all 359
        proc = run_cli("export", str(run_dir), "--format", fmt, "--dynamic-batch")
        name = "model.onnx" if fmt == "onnx" else "model.pt"
        spec = json.loads((run_dir / f"{name}.json").read_text())
        assert spec["verification"]["images"] == 100 + 4, proc.stdout
        assert spec["verification"]["pytorch_vs_predict"]["run_images"]["max_abs_diff"] <= 1e-6
        if fmt == "onnx":
            session = ort.InferenceSession(str(run_dir / name), providers=["CPUExecutionProvider"])
            got = np.concatenate([session.run(None, {"image": batch[k : k + 64]})[0] for k in range(0, 359, 64)])
        else:
            module = torch.jit.load(str(run_dir / name))
            with torch.no_grad():
                got = module(torch.from_numpy(batch)).numpy()
        diff = float(np.abs(got - reference).max())
        print(f"{fmt}: max |probability difference| on the 359 digits test images {diff:.3g}")
        assert diff <= bound, fmt
        assert (got.argmax(1) == reference.argmax(1)).all(), f"{fmt}: top-1 differs on some digits test image"


def load_test_labels(run_dir: Path) -> list[tuple[int, int]]:
    """``(index, label)`` of the run's digits test split, rebuilt from its saved config."""
    from transferlab.data.registry import data_modules

    model = load_for_inference(run_dir)
    data_cfg = model.saved.config["data"]
    module = data_modules()["digits"].from_config(data_cfg, model.network.backbone.data_config)
    module.setup("test")
    return [(i, int(label)) for i, label in enumerate(module.test_set.labels)]
