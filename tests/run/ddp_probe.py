"""A test-only Lightning callback: every DDP rank saves its own weights after each plan step.

The test compares the files of different ranks directly (independently of the engine's own digest check).
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from safetensors.torch import save_file


class SaveRankWeights(pl.Callback):
    """Save ``rank<r>_<step>.safetensors`` (the module's state dict) into ``out_dir`` when a fit ends."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        label = pl_module.step_plan.label
        state = {k: v.detach().cpu().contiguous() for k, v in pl_module.state_dict().items()}
        trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        path = self.out_dir / f"rank{trainer.global_rank}_{label}.safetensors"
        save_file(state, str(path), {"trainable": str(trainable)})
