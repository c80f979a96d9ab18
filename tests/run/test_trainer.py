import pytest
import torch

from transferlab.errors import ConfigError
from transferlab.run.trainer import resolve_precision, trainer_kwargs


def test_auto_precision_is_bf16_on_capable_gpus_16_on_older_and_fp32_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_precision("auto", "auto") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "auto") == "bf16-mixed"
    assert resolve_precision("auto", "cpu") == "32-true", "an explicit CPU run stays fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "gpu") == "16-mixed"
    assert resolve_precision("16-mixed", "cpu") == "16-mixed", "explicit values pass through"


def test_trainer_kwargs_refuse_engine_keys_and_unknown_arguments():
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs: not configurable here; epochs are set per stage"):
        trainer_kwargs({"max_epochs": 3})
    with pytest.raises(ConfigError, match=r"trainer\.max_epoch: lightning\.Trainer has no such argument"):
        trainer_kwargs({"max_epoch": 3})
    assert trainer_kwargs({"accelerator": "cpu", "precision": "auto"})["precision"] == "32-true"
