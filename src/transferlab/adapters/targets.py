"""Resolve ``strategy.adapter.target_modules`` patterns to the exact modules LoRA may wrap."""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from transferlab.errors import ConfigError

log = logging.getLogger(__name__)

#: Prefix of the wrapped model's modules inside a ``ModelBackbone``; patterns may leave it out.
_MODEL_PREFIX = "model."


@dataclass(frozen=True)
class Targets:
    """What the patterns resolved to.

    Attributes:
        names: Module names (as in ``backbone.named_modules()``) that LoRA wraps, in module order.
        skipped: ``name: reason`` for matched modules LoRA cannot wrap exactly (e.g. depthwise convs).
    """

    names: tuple[str, ...]
    skipped: tuple[str, ...]


def unsupported_reason(module: nn.Module, parent: nn.Module | None) -> str | None:
    """Why peft's LoRA cannot adapt ``module`` so that merging reproduces it exactly (``None``: it can).

    Args:
        module: A candidate module.
        parent: Its parent module (``None`` for the root).

    Returns:
        A short reason, or ``None`` for a supported Conv2d/Linear.
    """
    if isinstance(module, nn.Conv2d):
        if module.groups > 1:
            # peft refuses to merge grouped convs (and needs rank % groups == 0); depthwise convs are tiny anyway.
            return f"grouped conv (groups={module.groups}); peft cannot merge LoRA into it"
        if any(d != 1 for d in module.dilation):
            return f"dilated conv (dilation={module.dilation}); peft's LoRA conv ignores dilation"
        if module.padding_mode != "zeros":
            return f"padding_mode={module.padding_mode!r}; peft's LoRA conv pads with zeros"
        return None
    if isinstance(module, nn.Linear):
        if isinstance(parent, nn.MultiheadAttention):
            # MultiheadAttention reads out_proj.weight directly and never calls its forward: LoRA would be ignored.
            return "out_proj of nn.MultiheadAttention (its forward is bypassed)"
        return None
    return f"{type(module).__name__} (LoRA here adapts Conv2d and Linear only)"


def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # e.g. '*conv_pw': a glob, not a regular expression


def _matches(pattern: str, regex: re.Pattern[str] | None, name: str) -> bool:
    names = (name, name.removeprefix(_MODEL_PREFIX))
    return any(fnmatch.fnmatchcase(n, pattern) or (regex is not None and regex.fullmatch(n)) for n in names)


def _sample(names: Sequence[str], count: int = 8) -> str:
    if len(names) <= count:
        return ", ".join(names)
    step = len(names) / count
    return ", ".join(names[int(i * step)] for i in range(count)) + f", … ({len(names)} in all)"


def resolve_targets(backbone: nn.Module, patterns: Sequence[str], where: str) -> Targets:
    r"""Match module-name patterns against the backbone's Conv2d/Linear modules.

    A pattern matches a module name if it matches as a glob (``fnmatch``, e.g. ``*conv_pw``) or as a full
    regular expression (e.g. ``model\.layer4\..*conv[12]``). Names are those of ``backbone.named_modules()``
    (``model.blocks.1.0.conv_pw``), with or without the leading ``model.``.

    Args:
        backbone: The backbone before injection.
        patterns: The ``target_modules`` patterns.
        where: Config key for messages (``strategy.adapter.target_modules``).

    Returns:
        The supported matches and the skipped ones (with reasons).

    Raises:
        ConfigError: If no supported Conv2d/Linear module matches; the message lists the patterns, what they
            hit and names that exist.
    """
    parents = {child: parent for parent in backbone.modules() for child in parent.children()}
    candidates = [(n, m) for n, m in backbone.named_modules() if n and isinstance(m, (nn.Conv2d, nn.Linear))]
    compiled = [(p, _regex(p)) for p in patterns]
    chosen: list[str] = []
    skipped: list[str] = []
    hits = dict.fromkeys(patterns, 0)
    for name, module in candidates:
        matched = [p for p, rx in compiled if _matches(p, rx, name)]
        if not matched:
            continue
        for p in matched:
            hits[p] += 1
        reason = unsupported_reason(module, parents.get(module))
        if reason is None:
            chosen.append(name)
        else:
            skipped.append(f"{name}: {reason}")
    supported = [n for n, m in candidates if unsupported_reason(m, parents.get(m)) is None]
    if not chosen:
        what = (
            f"they match only modules LoRA cannot wrap ({'; '.join(skipped[:3])})"
            if skipped
            else ("they match no Conv2d/Linear module")
        )
        raise ConfigError(
            f"{where}={list(patterns)!r}: {what}. Modules LoRA can adapt here include: {_sample(supported)}. "
            f"Fix: {where}='[<glob or regex over these names>]', e.g. '[*conv_pw,*conv_head]'."
        )
    for pattern, count in hits.items():
        if count == 0:
            log.warning("%s: pattern %r matches no Conv2d/Linear module; HINT: check it for typos.", where, pattern)
    if skipped:
        log.info("LoRA skips %d matched modules it cannot adapt exactly, e.g. %s", len(skipped), skipped[0])
    return Targets(tuple(chosen), tuple(skipped))
