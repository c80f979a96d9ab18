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


def test_hardware_that_is_asked_for_and_absent_is_a_config_error(monkeypatch):
    from transferlab.run.trainer import parse_trainer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^trainer\.accelerator=gpu: this machine has no CUDA GPU.*Fix: trainer=cpu"):
        parse_trainer({"accelerator": "gpu", "devices": 1})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"^trainer\.devices=4: asks for GPU\(s\) up to 4, this machine has 2"):
        parse_trainer({"accelerator": "gpu", "devices": 4})
    with pytest.raises(ConfigError, match=r"trainer\.devices=\[0, 3\]"):
        parse_trainer({"accelerator": "cuda", "devices": [0, 3]})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("log_every_n_steps", 0),
        ("log_every_n_steps", "ten"),
        ("accumulate_grad_batches", 0),
        ("limit_train_batches", -1),
        ("limit_val_batches", 1.5),
        ("precision", "fp8"),
        ("accelerator", "abacus"),
        ("devices", 0),
        ("deterministic", "sometimes"),
        ("gradient_clip_val", -0.5),
        ("enable_progress_bar", "yes"),
        ("strategy", "ddp_typo"),
    ],
)
def test_a_bad_trainer_value_names_the_key_the_value_and_the_fix(key, value):
    from transferlab.run.trainer import parse_trainer

    with pytest.raises(ConfigError) as info:
        parse_trainer({"accelerator": "cpu", key: value} if key != "accelerator" else {key: value})
    text = str(info.value)
    assert text.startswith(f"trainer.{key}={value!r}") and "Fix:" in text, text
