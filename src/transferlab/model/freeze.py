"""Freezing: which backbone parameters train, and which modules stay in eval mode.

The rule that keeps frozen parts bit-identical: a module whose parameters are all frozen runs in eval mode
(its BatchNorm running statistics never move and its dropout is off), whatever Lightning's ``train()`` says.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from transferlab.adapters.markers import is_adapter_param, is_bias_param
from transferlab.backbones.base import LayerGroup
from transferlab.strategies.plan import GroupInfo
from transferlab.strategies.spec import BnMode, Params


class GroupIndex:
    """The backbone's layer groups resolved to parameter objects, built once per backbone.

    Args:
        backbone: The backbone module (implements ``layer_groups()``).

    Raises:
        ValueError: If the backbone's groups miss or repeat a parameter (a broken backbone contract).
    """

    def __init__(self, backbone: nn.Module) -> None:
        self.groups: list[LayerGroup] = list(backbone.layer_groups())  # type: ignore[operator]
        named = dict(backbone.named_parameters())
        seen: set[str] = set()
        self.params: list[list[tuple[str, nn.Parameter]]] = []
        for group in self.groups:
            members = []
            for name in group.param_names:
                if name in seen or name not in named:
                    raise ValueError(f"backbone {getattr(backbone, 'name', '?')}: bad layer group entry {name!r}")
                seen.add(name)
                members.append((name, named[name]))
            self.params.append(members)
        missing = set(named) - seen
        if missing:
            raise ValueError(
                f"backbone {getattr(backbone, 'name', '?')}: parameters in no layer group: {sorted(missing)[:5]}"
            )
        self.norm_params: set[int] = {
            id(p) for m in backbone.modules() if isinstance(m, _BatchNorm) for p in m.parameters(recurse=False)
        }

    @property
    def names(self) -> list[str]:
        """Group names, stem → top."""
        return [g.name for g in self.groups]

    def infos(self) -> list[GroupInfo]:
        """Per-group parameter counts for the plan compiler."""
        return [
            GroupInfo(
                name=g.name,
                num_params=sum(p.numel() for _, p in members),
                num_norm_params=sum(p.numel() for _, p in members if id(p) in self.norm_params),
                num_bias_params=sum(p.numel() for n, p in members if is_bias_param(n)),
                num_adapter_params=sum(p.numel() for n, p in members if is_adapter_param(n)),
                num_norm_bias_params=sum(
                    p.numel() for n, p in members if is_bias_param(n) and id(p) in self.norm_params
                ),
            )
            for g, members in zip(self.groups, self.params, strict=True)
        ]

    def _trains(self, name: str, param: nn.Parameter, bn: BnMode, params: Params) -> bool:
        if bn == "frozen" and id(param) in self.norm_params:
            return False
        if params == "adapter":
            return is_adapter_param(name)
        if params == "bias":
            return is_bias_param(name)
        return True

    def set_trainable(self, trainable: Iterable[str], bn: BnMode, params: Params = "all") -> None:
        """Set ``requires_grad`` on every backbone parameter.

        Args:
            trainable: Names of the groups that train.
            bn: BatchNorm mode; ``frozen`` keeps BatchNorm affine weights frozen even in trainable groups.
            params: Which parameters of trainable groups train (``all``, ``bias``, ``adapter``).
        """
        open_names = set(trainable)
        for group, members in zip(self.groups, self.params, strict=True):
            for name, p in members:
                p.requires_grad_(group.name in open_names and self._trains(name, p, bn, params))

    def trainable_params(
        self, trainable: Iterable[str], bn: BnMode, params: Params = "all"
    ) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters per group name (the optimizer's param groups)."""
        open_names = set(trainable)
        out = {}
        for group, members in zip(self.groups, self.params, strict=True):
            if group.name in open_names:
                keep = [p for name, p in members if self._trains(name, p, bn, params)]
                if keep:
                    out[group.name] = keep
        return out


def apply_module_modes(backbone: nn.Module, bn: BnMode) -> None:
    """Put frozen parts of a backbone (already in train mode) into eval mode.

    Walks the module tree from the top: a module whose parameters are all frozen is set to eval (with its
    children) — this keeps BatchNorm statistics of frozen groups bit-identical and turns their dropout off.
    With ``bn`` in ``eval``/``frozen`` every BatchNorm layer uses and keeps its running statistics.

    Args:
        backbone: The backbone, after ``train()``.
        bn: The stage's BatchNorm mode.
    """

    def visit(module: nn.Module) -> None:
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()
            return
        for child in module.children():
            visit(child)

    visit(backbone)
    if bn in ("eval", "frozen"):
        for m in backbone.modules():
            if isinstance(m, _BatchNorm):
                m.eval()
