"""Parameter-efficient adapters (LoRA through peft) injected into a backbone, and merged back for export."""

from transferlab.adapters.apply import apply_adapter, merge_adapters

__all__ = ["apply_adapter", "merge_adapters"]
