"""Which parameter names belong to an adapter (and which are biases): one definition for every layer."""

from __future__ import annotations

#: Substrings that mark adapter parameters (peft's LoRA tensors are ``…lora_A.default.weight``).
ADAPTER_MARKERS = ("lora_",)


def is_adapter_param(name: str) -> bool:
    """Whether a parameter name belongs to a parameter-efficient adapter."""
    return any(marker in name for marker in ADAPTER_MARKERS)


def is_bias_param(name: str) -> bool:
    """Whether a parameter is a bias (what BitFit trains); adapter biases do not count."""
    return name.endswith("bias") and not is_adapter_param(name)
