"""The hub probe: offline is known in seconds, and huggingface_hub is then switched to its cache."""

from __future__ import annotations

import socket
import time

from huggingface_hub import constants

from transferlab.backbones import hub


def test_a_closed_port_is_unreachable_at_once():
    start = time.perf_counter()
    reason = hub.unreachable_reason("http://127.0.0.1:9")
    assert reason is not None and "127.0.0.1:9" in reason, reason
    assert time.perf_counter() - start < 5


def test_a_listening_port_is_reachable():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert hub.unreachable_reason(f"http://127.0.0.1:{server.getsockname()[1]}") is None


def test_an_unreachable_hub_turns_huggingface_hub_offline(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    reason = hub.prepare_hf_download()
    assert reason is not None and "cannot connect" in reason, reason
    assert constants.is_offline_mode(), "missing files must then fail at once instead of ~50 s of retries"


def test_offline_from_the_environment_needs_no_probe(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub.prepare_hf_download() == "HF_HUB_OFFLINE is set"
