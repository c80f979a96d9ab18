"""Entry points the engine calls: inject the strategy's adapter, merge it before export."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from transferlab.errors import ConfigError


def apply_adapter(backbone: nn.Module, spec: Mapping[str, Any] | None) -> nn.Module:
    """Inject the adapter described by ``strategy.adapter`` into ``backbone`` (``None``: unchanged)."""
    if spec is None:
        return backbone
    raise ConfigError(f"strategy.adapter={dict(spec)!r}: adapters are not available in this build.")


def merge_adapters(module: nn.Module) -> nn.Module:
    """Fold adapter weights into the base weights so the export is a plain backbone (no-op without adapters)."""
    return module
