import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from transferlab.model.module import classifier
from transferlab.strategies import compile_plan, parse_strategy


class RandomData(pl.LightningDataModule):
    num_classes = 3
    class_names = ("a", "b", "c")

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(48, 3, 16, 16, generator=g)
        self.y = torch.randint(0, 3, (48,), generator=g)

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=16, shuffle=True)

    def val_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=16)

    test_dataloader = val_dataloader


def fit(module, plan):
    for step in plan.steps:
        module.set_step(step)
        trainer = pl.Trainer(
            max_epochs=step.epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            num_sanity_val_steps=0,
        )
        trainer.fit(module, datamodule=RandomData())


def make(tiny_backbone, stages):
    module = classifier(tiny_backbone, num_classes=3)
    plan = compile_plan(parse_strategy({"name": "t", "stages": stages}), module.groups.infos(), 51)
    return module, plan


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_feature_extraction_keeps_every_backbone_tensor_and_bn_statistic_bit_identical(tiny_backbone):
    module, plan = make(tiny_backbone, {"p": {"epochs": 2, "trainable": "head", "lr_head": 0.1}})
    before = snapshot(module)
    fit(module, plan)
    after = module.state_dict()
    for key, value in before.items():
        if key.startswith("backbone."):
            assert torch.equal(value, after[key]), f"{key} changed during feature extraction"
    assert not torch.equal(before["head.weight"], after["head.weight"]), "the head must train"
    assert after["backbone.stem.1.num_batches_tracked"].item() == 0, "frozen BN must not count batches"


@pytest.mark.parametrize("bn", ["train", "eval", "frozen"])
def test_partial_freeze_keeps_frozen_groups_identical_and_bn_mode_is_honoured(tiny_backbone, bn):
    module, plan = make(tiny_backbone, {"p": {"epochs": 1, "trainable": "top:1", "lr_head": 0.1, "bn": bn}})
    before = snapshot(module)
    fit(module, plan)
    after = module.state_dict()
    for key in before:
        if key.startswith(("backbone.stem.", "backbone.block1.")):
            assert torch.equal(before[key], after[key]), f"{key} of a frozen group changed (bn={bn})"
    conv_changed = not torch.equal(before["backbone.block2.0.weight"], after["backbone.block2.0.weight"])
    assert conv_changed, "the trainable top group must change"
    stats_moved = not torch.equal(before["backbone.block2.1.running_mean"], after["backbone.block2.1.running_mean"])
    assert stats_moved == (bn == "train"), f"bn={bn}: running stats moved={stats_moved}"
    affine_moved = not torch.equal(before["backbone.block2.1.weight"], after["backbone.block2.1.weight"])
    assert affine_moved == (bn != "frozen"), f"bn={bn}: BN affine moved={affine_moved}"


def test_modes_after_train_call(tiny_backbone):
    module, plan = make(tiny_backbone, {"p": {"epochs": 1, "trainable": "top:1"}})
    module.set_step(plan.steps[0])
    module.train()
    assert not module.backbone.stem.training and not module.backbone.block1.training, "frozen groups in eval"
    assert not module.backbone.block1[3].training, "dropout inside a frozen group is off"
    assert module.backbone.block2.training and module.head.training, "trainable parts in train mode"


def test_optimizer_param_groups_are_named_and_skip_decay_on_biases_and_norms(tiny_backbone):
    module, plan = make(tiny_backbone, {"p": {"epochs": 1, "trainable": "all", "weight_decay": 0.05}})
    module.set_step(plan.steps[0])
    opt = module.configure_optimizers()["optimizer"]
    by_name = {g["name"]: g for g in opt.param_groups}
    assert set(by_name) == {
        "head",
        "head/no_decay",
        "backbone.stem",
        "backbone.stem/no_decay",
        "backbone.block1",
        "backbone.block1/no_decay",
        "backbone.block2",
        "backbone.block2/no_decay",
    }, sorted(by_name)
    assert all(p.ndim <= 1 for p in by_name["backbone.stem/no_decay"]["params"]), "biases and norms only"
    assert by_name["backbone.stem/no_decay"]["weight_decay"] == 0.0 and by_name["head"]["weight_decay"] == 0.05
    frozen_ids = {id(p) for g in opt.param_groups for p in g["params"]}
    assert len(frozen_ids) == sum(1 for p in module.parameters() if p.requires_grad), "every trainable param once"
