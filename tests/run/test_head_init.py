"""``head_init: ridge`` (``run/head_init.py``): the head becomes the closed-form probe; nothing else changes."""

from __future__ import annotations

import random

import numpy as np
import torch

from transferlab.config.compose import compose
from transferlab.run.assembly import assemble
from transferlab.run.feature_cache import compute_features
from transferlab.run.head_init import SCALES, ridge_head
from transferlab.run.quick_probe import fit_ridge
from transferlab.run.spec import parse_config

SMALL = ["backbone=small_cnn", "backbone.weights=null", "data.image_size=16", "data=digits", "data.shots_per_class=10"]


def test_the_head_is_the_scaled_ridge_fit_and_the_rest_is_untouched():
    parts = assemble(parse_config(compose([*SMALL, "strategy=lp_ft", "+strategy.stages.probe.head_init=ridge"])))
    module = parts.module
    module.train()
    backbone_before = {k: v.clone() for k, v in module.backbone.state_dict().items()}  # weights and BN buffers
    torch.manual_seed(11)
    random.seed(11)
    np.random.seed(11)
    rng = torch.random.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    found = ridge_head(parts, "probe", torch.device("cpu"))
    # the random states and the backbone are as they were; the module is back in training mode
    assert torch.equal(torch.random.get_rng_state(), rng[0]) and random.getstate() == rng[1]
    assert np.array_equal(np.random.get_state()[1], rng[2])
    after = module.backbone.state_dict()
    assert all(torch.equal(after[k], v) for k, v in backbone_before.items())
    assert module.training
    # an independent fit on the same features gives the same head, up to the chosen logit scale
    feats = compute_features(module.backbone, parts.data, torch.device("cpu"), "32-true", splits=("train", "val"))
    fit = fit_ridge(feats["train.features"], feats["train.labels"], feats["val.features"], feats["val.labels"], 10)
    head = module.task.head
    assert found["scale"] in SCALES and found["penalty"] == fit.penalty
    torch.testing.assert_close(head.weight.detach(), fit.weight * found["scale"])
    torch.testing.assert_close(head.bias.detach(), fit.bias * found["scale"])
    # the head's own val accuracy is the one recorded
    module.eval()
    with torch.no_grad():
        logits = module.task(feats["val.features"])
    acc = float((logits.argmax(1) == feats["val.labels"]).float().mean())
    assert abs(acc - found["val_acc"]) < 1e-6, (acc, found)
