"""Every data module satisfies the TransferData contract and feeds a real Lightning Trainer."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from transferlab.data import TransferData, build_data


class TinyClassifier(pl.LightningModule):
    def __init__(self, num_inputs: int, num_classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(num_inputs, num_classes)
        self.seen = 0

    def _step(self, batch):
        x, y = batch
        self.seen += len(y)
        return nn.functional.cross_entropy(self.head(x.flatten(1)), y)

    def training_step(self, batch, _):
        return self._step(batch)

    def validation_step(self, batch, _):
        self._step(batch)

    def test_step(self, batch, _):
        self._step(batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.fixture(params=["digits", "synthetic", "image_folder"])
def module(request, make_tree, data_config):
    cfg = {"name": request.param, "image_size": 8, "batch_size": 16, "num_workers": 0}
    if request.param == "image_folder":
        cfg |= {"root": str(make_tree({"a": 6, "b": 6})), "augment": {"hflip": True}}
    return build_data(cfg, data_config)


def test_contract_and_trainer(module):
    assert isinstance(module, TransferData), f"{type(module).__name__} does not satisfy TransferData"
    module.setup("fit")
    module.setup("test")  # Lightning calls setup once per stage: it must be idempotent
    assert isinstance(module.describe(), str), "describe() should return the run-log line"
    assert isinstance(module.augment_enabled, bool), "augment_enabled should be a bool"
    model = TinyClassifier(3 * 8 * 8, module.num_classes)
    trainer = pl.Trainer(
        fast_dev_run=True,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=module)
    trainer.test(model, datamodule=module, verbose=False)
    assert model.seen > 0, "the Trainer should have consumed batches from the module"
