"""A 2-strategy × 2-seed sweep as a user compares it: TensorBoard's HParams data, run names, early stops.

Read back through TensorBoard's own readers: ``EventAccumulator`` on each job's events, and a real
``tensorboard`` server's HTTP data API (what its HParams dashboard requests).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.clitools import FAST, run_cli

SWEEP = [
    *FAST,
    "backbone=small_cnn",
    "backbone.weights=null",
    "data=synthetic",
    "strategy=feature_extraction,finetune",
    "seed=0,1",
    # never improves by 2: every step stops after its second epoch
    "+callbacks.extra.es._target_=lightning.pytorch.callbacks.EarlyStopping",
    "+callbacks.extra.es.monitor=val/acc",
    "+callbacks.extra.es.patience=0",
    "+callbacks.extra.es.min_delta=2",
]
SWEPT = ["seed", "strategy"]

pytestmark = pytest.mark.slow  # a real 4-job sweep and a tensorboard server (~40 s): CI's slow phase


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("tb_sweep")
    proc = run_cli("train", "-m", *SWEEP, f"hydra.sweep.dir={root / 'sweep'}", cwd=root)
    return root / "sweep", proc.stdout


def _hparams(event_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(event_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    return acc, start, exp


def _event_dirs(sweep_dir: Path) -> dict[str, Path]:
    """Job number → its one event dir (``<job>/tensorboard/<run name>``)."""
    out = {}
    for job in sorted(p for p in sweep_dir.iterdir() if p.name.isdigit()):
        (events,) = (job / "tensorboard").rglob("events.out.tfevents.*")
        out[job.name] = events.parent
    return out


def test_every_job_logs_the_same_hparams_columns_swept_keys_first(sweep):
    sweep_dir, _ = sweep
    dirs = _event_dirs(sweep_dir)
    assert len(dirs) == 4
    key_sets, strategies = [], set()
    for event_dir in dirs.values():
        _, start, exp = _hparams(event_dir)
        key_sets.append(set(start.hparams))
        assert [i.name for i in exp.hparam_infos][:2] == SWEPT, "swept keys come first"
        assert [i.name for i in exp.hparam_infos if i.differs] == SWEPT, "only the swept keys are flagged"
        assert {i.name for i in exp.hparam_infos} == set(start.hparams)
        strategies.add(start.hparams["strategy"].string_value)
        # each strategy's stage keys are columns of every job: n/a where the job has no such stage
        own = "probe" if start.hparams["strategy"].string_value == "feature_extraction" else "finetune"
        other = "finetune" if own == "probe" else "probe"
        assert start.hparams[f"strategy.stages.{other}.epochs"].string_value == "n/a"
        assert start.hparams[f"strategy.stages.{own}.epochs"].string_value.isdigit()
    assert all(keys == key_sets[0] for keys in key_sets), "jobs log different HParams columns"
    assert strategies == {"feature_extraction", "finetune"}


def test_run_names_say_what_the_job_varies(sweep):
    sweep_dir, _ = sweep
    names = {event_dir.name for event_dir in _event_dirs(sweep_dir).values()}
    assert names == {f"strategy={s},seed={n}" for s in ("feature_extraction", "finetune") for n in (0, 1)}


def test_early_stops_and_test_steps_are_recorded_as_they_happened(sweep):
    sweep_dir, stdout = sweep
    assert "2 of 6 (stopped early)" in stdout and "early stop: finetune step finetune: Monitored metric" in stdout
    for job, event_dir in _event_dirs(sweep_dir).items():
        metrics = json.loads((sweep_dir / job / "metrics.json").read_text())
        (row,) = metrics["stages"].values()
        assert row["epochs"] == 2 < row["planned_epochs"], row
        (stop,) = row["early_stop"]
        assert stop["epochs"] == 2 and "did not improve" in stop["reason"], stop
        assert len(metrics["epochs"]) == 2
        acc, _, _ = _hparams(event_dir)
        train_steps = 2 * 2  # 2 epochs of 2 batches (trainer.limit_train_batches=2)
        assert [e.step for e in acc.Scalars("test/acc")] == [train_steps], "the test is logged where it ran"
        assert max(e.step for e in acc.Scalars("val/acc")) < train_steps
        assert "early_stop/text_summary" in acc.Tags()["tensors"], "the early stop is in TensorBoard (text)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_tensorboards_hparams_api_lists_the_swept_keys_and_every_jobs_metrics(sweep):
    sweep_dir, _ = sweep
    port = _free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    server = subprocess.Popen(
        [str(tensorboard), "--logdir", str(sweep_dir), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/data/plugin/hparams"
    try:
        deadline, experiment = time.monotonic() + 60, {}
        while time.monotonic() < deadline and len(experiment.get("hparamInfos", [])) < 2:
            with contextlib.suppress(OSError):  # not listening yet
                experiment = _post(f"{base}/experiment", {"experimentName": ""})
            time.sleep(0.5)
        shown = [h["name"] for h in experiment["hparamInfos"]][:5]  # the columns ticked by default
        assert shown[:2] == SWEPT, shown
        assert {"hparams/val_acc", "hparams/test_acc"} <= {m["name"]["tag"] for m in experiment["metricInfos"]}
        query = {
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
            "colParams": [],
            "startIndex": 0,
            "sliceSize": 100,
        }
        groups = _post(f"{base}/session_groups", query)["sessionGroups"]
        assert len(groups) == 4, [g["name"] for g in groups]
        for group in groups:
            assert group["name"].endswith(
                f"strategy={group['hparams']['strategy']},seed={int(group['hparams']['seed'])}"
            )
            tags = {m["name"]["tag"] for m in group["metricValues"]}
            assert {"hparams/val_acc", "hparams/test_acc"} <= tags, group
    finally:
        server.terminate()
        server.wait(timeout=30)
