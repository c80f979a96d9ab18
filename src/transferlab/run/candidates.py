"""The ``candidates`` of ``transferlab rank``: each entry names a backbone and its weights.

Grammar of one entry:

* ``<option>`` — a ``conf/backbone/<option>.yaml`` (``efficientnet_lite0``, ``resnet18``): its name and weights;
* ``<registry name>`` — any ``transferlab ls backbone`` name (``timm:convnext_atto``), random init;
* ``<either>@<weights>`` — the same with ``backbone.weights=<weights>`` (``@null`` random init, ``@package``,
  ``@hub``, ``@<file or run dir>``);
* ``checkpoint:<run dir or weights file>`` — a previous run's architecture and weights.

Every entry is checked before any feature is computed: a name the registry does not know, weights that cannot
work for it or a path that does not exist stop the ranking with the entry's index and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from transferlab.backbones.registry import CHECKPOINT
from transferlab.config.paths import conf_dir
from transferlab.errors import ConfigError, TransferlabError
from transferlab.run.spec import BackboneChoice, RunConfig, parse_backbone

WHERE = "candidates"
_RANDOM = ("null", "none", "random")


@dataclass(frozen=True)
class Candidate:
    """One checked entry of ``candidates``.

    Attributes:
        label: The entry as written (the table's row name).
        backbone: The ``backbone`` group it stands for.
    """

    label: str
    backbone: BackboneChoice

    @property
    def weights_text(self) -> str:
        """The weights value for tables: ``random`` for none."""
        return "random" if self.backbone.weights is None else str(self.backbone.weights)

    def config(self, base: RunConfig) -> RunConfig:
        """``base`` with this backbone, the pure pretrained model (no adapter, sharing or re-initialisation)."""
        strategy = replace(base.strategy, adapter=None, shared_groups=None, init="pretrained")
        resolved = dict(base.resolved) | {"backbone": {"name": self.backbone.name, "weights": self.backbone.weights}}
        return replace(base, backbone=self.backbone, strategy=strategy, resolved=resolved)


def _conf_option(option: str) -> dict[str, Any] | None:
    path = conf_dir() / "backbone" / f"{option}.yaml"
    if "/" in option or not path.is_file():
        return None
    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else None


def parse_candidate(entry: Any, index: int) -> Candidate:
    """Check one entry (see the module docstring) without loading weights.

    Raises:
        ConfigError: For an entry that is not a non-empty string, or one the registry refuses (the message names
            ``candidates[<index>]`` and the fix).
    """
    where = f"{WHERE}[{index}]"
    if not isinstance(entry, str) or not entry.strip():
        raise ConfigError(
            f"{where}={entry!r}: expected a backbone, e.g. efficientnet_lite0, efficientnet_lite0@null or "
            f"checkpoint:<run dir>. Fix: 'candidates=[efficientnet_lite0,efficientnet_lite2]'."
        )
    text = entry.strip()
    if text.startswith(f"{CHECKPOINT}:"):
        name, weights = CHECKPOINT, text.split(":", 1)[1]
    else:
        name, _, given = text.partition("@")
        option = _conf_option(name)
        weights = option.get("weights") if option else None
        name = str(option.get("name", name)) if option else name
        if given:
            weights = None if given.lower() in _RANDOM else given
    try:
        backbone = parse_backbone({"name": name, "weights": weights})
    except TransferlabError as err:
        message = " ".join(str(err).split())
        raise ConfigError(
            f"{where}={text!r}: {message} (an entry is a conf/backbone option or registry name, optionally "
            f"@<weights>, or checkpoint:<run dir or file>; 'transferlab ls backbone' lists the names)"
        ) from None
    if isinstance(backbone.weights, str) and backbone.weights not in ("hub", "package"):
        backbone = replace(backbone, weights=str(Path(backbone.weights).expanduser()))
    return Candidate(text, backbone)


def parse_candidates(raw: Any, base: BackboneChoice) -> list[Candidate]:
    """Every entry of ``candidates`` checked (an empty list or ``null``: the configured backbone alone).

    Raises:
        ConfigError: For a value that is not a list, a bad entry, or the same entry twice.
    """
    if raw is None or raw == []:
        label = base.name if base.weights is None else f"{base.name}@{base.weights}"
        return [Candidate(label, base)]
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, (list, tuple)):
        raise ConfigError(f"{WHERE}={raw!r}: expected a list. Fix: 'candidates=[efficientnet_lite0,small_cnn]'.")
    candidates = [parse_candidate(entry, i) for i, entry in enumerate(raw)]
    seen: dict[tuple[str, Any], str] = {}
    for c in candidates:
        key = (c.backbone.name, c.backbone.weights)
        if key in seen:
            raise ConfigError(
                f"{WHERE}: {seen[key]!r} and {c.label!r} are the same backbone and weights. Fix: list each once."
            )
        seen[key] = c.label
    return candidates
