"""Knowing fast whether hub downloads can work: a short connect probe before timm asks the Hugging Face Hub.

Offline, ``huggingface_hub`` retries every request with back-off (about 50 s before timm's
``pretrained=True`` gives up). :func:`prepare_hf_download` probes the Hub's host once (a few seconds at most,
usually milliseconds: offline, the name does not resolve) and, when it cannot be reached, switches
``huggingface_hub`` to its offline mode for this process: weights already in the local cache still load, and
missing ones fail at once. ``HF_HUB_OFFLINE=1`` in the environment skips the probe (offline mode from the start).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: Seconds the probe waits for the name lookup and for the TCP connect, each.
PROBE_TIMEOUT_S = 3.0
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    port = parts.port or (80 if parts.scheme == "http" else 443)
    return parts.hostname or "", port


def _resolve(host: str, port: int, timeout: float) -> list[tuple] | None:
    """``getaddrinfo`` with a deadline (it has none of its own): ``None`` when it fails or takes too long."""
    result: list[list[tuple] | None] = [None]

    def lookup() -> None:
        try:
            result[0] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            result[0] = None

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0]


@functools.cache
def unreachable_reason(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why ``url``'s host (or the HTTPS proxy, when one is set) cannot be reached, or ``None`` if it can.

    Args:
        url: A URL or host name.
        timeout: Seconds allowed for the name lookup and for the connect, each.

    Returns:
        ``None`` when a TCP connection opens; otherwise a short reason (cached for the process).
    """
    proxy = next((os.environ[v] for v in _PROXY_VARS if os.environ.get(v)), None)
    host, port = _host_port(proxy or url)
    via = f"proxy {host}:{port}" if proxy else f"{host}:{port}"
    addresses = _resolve(host, port, timeout)
    if not addresses:
        return f"{via}: the name does not resolve"
    last: OSError | None = None
    for family, kind, proto, _, address in addresses[:3]:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
                return None
        except OSError as err:
            last = err
    return f"{via}: cannot connect ({last})"


def prepare_hf_download() -> str | None:
    """Before a Hugging Face Hub download: if the Hub cannot be reached, turn ``huggingface_hub`` offline.

    Returns:
        ``None`` when the Hub is reachable; otherwise the reason it is not, after switching this process to
        offline mode (cached files load, missing ones fail at once).
    """
    from huggingface_hub import constants

    if constants.is_offline_mode():  # set in the environment, or by an earlier probe of this process
        return "HF_HUB_OFFLINE is set" if os.environ.get("HF_HUB_OFFLINE") else unreachable_reason(constants.ENDPOINT)
    reason = unreachable_reason(constants.ENDPOINT)
    if reason is not None:
        constants.HF_HUB_OFFLINE = True  # read at call time by huggingface_hub: no retries, cache only
        log.info("Hugging Face Hub unreachable (%s): offline mode, cached weights only", reason)
    return reason


def hf_cache_dir() -> str:
    """The local Hugging Face Hub cache (where ``weights=hub`` looks when offline)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)
