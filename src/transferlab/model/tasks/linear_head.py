"""What the single- and multi-label tasks share: dropout → one linear head with one output per class or label."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from transferlab.model.tasks.base import Task
from transferlab.model.tasks.options import TaskOptions
from transferlab.strategies.plan import HEAD


class LinearHeadTask(Task):
    """``head(dropout(features))``: ``(B, outputs)`` logits, the ``task`` group's options, the output names.

    Args:
        num_features: Width of the backbone's features (the head's input).
        outputs: Number of classes (or labels).
        names: Their names, index-aligned (``0..outputs-1`` when not given).
        head_dropout: Dropout probability before the head.
        options: The ``task`` group.
        kind: ``class`` or ``label`` (for messages).

    Raises:
        ValueError: For ``outputs < 1`` or a name list of another length.
    """

    def __init__(
        self,
        num_features: int,
        outputs: int,
        names: Sequence[str] | None,
        head_dropout: float,
        options: TaskOptions | None,
        kind: str = "class",
    ) -> None:
        super().__init__()
        if outputs < 1:
            raise ValueError(f"num_{kind}{'es' if kind == 'class' else 's'}={outputs}: must be ≥ 1")
        out = [str(n) for n in names] if names is not None else [str(i) for i in range(outputs)]
        if len(out) != outputs:
            raise ValueError(f"{len(out)} {kind} names for {outputs} {kind}{'es' if kind == 'class' else 's'}")
        self.output_names = out
        self.options = options or TaskOptions()
        self.gamma = self.options.focal_gamma if self.options.loss == "focal" else None  # None: no focusing
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(int(num_features), outputs)

    @property
    def smoothing(self) -> float:
        """Label smoothing of the training loss now: the stage's, else the ``task`` group's."""
        return self.options.label_smoothing if self.stage_smoothing is None else self.stage_smoothing

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(B, outputs)``."""
        return self.head(self.dropout(features))

    def head_groups(self) -> dict[str, list[nn.Parameter]]:
        """One param group, ``head``."""
        return {HEAD: list(self.head.parameters())}

    def check_weights(self, **weights: torch.Tensor | None) -> None:
        """Refuse loss weights whose shape is not ``(outputs,)`` (a programming error: the assembly checks lists).

        Raises:
            ValueError: Naming the weights and their shape.
        """
        outputs = self.head.out_features
        for what, tensor in weights.items():
            if tensor is not None and tuple(tensor.shape) != (outputs,):
                raise ValueError(f"{what} of shape {tuple(tensor.shape)} for {outputs} outputs")
