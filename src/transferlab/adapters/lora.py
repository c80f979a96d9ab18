"""LoRA through peft: inject low-rank adapters into a plain ``nn.Module``, and fold them back in.

peft is imported inside the functions: it pulls in ``transformers`` (seconds of start-up) and only runs
that use an adapter need it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn

from transferlab.adapters.spec import LoraSpec

#: peft's name of the one adapter each wrapped layer holds.
ADAPTER_NAME = "default"


def inject_lora(model: nn.Module, spec: LoraSpec, names: Sequence[str]) -> list[str]:
    """Wrap the named modules of ``model`` in peft LoRA layers, in place.

    ``requires_grad`` of the existing parameters is left as it was (peft would freeze them): which
    parameters train is decided per stage by the engine (``params: adapter``). At initialisation LoRA's
    ``B`` is zero, so the model computes exactly what it did before.

    Args:
        model: The module to adapt (stays a plain ``nn.Module``; no ``PeftModel`` wrapper).
        spec: Rank, alpha, dropout.
        names: Exact module names (as in ``model.named_modules()``) to wrap.

    Returns:
        The names of the wrapped modules, as peft found them.

    Raises:
        RuntimeError: If peft wrapped a different set of modules than asked (a peft behaviour change).
    """
    import peft

    requires_grad = {id(p): p.requires_grad for p in model.parameters()}
    config = peft.LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        bias=spec.bias,
        # A string is matched with re.fullmatch against each module name: exactly the resolved modules, none
        # of the suffix matching peft applies to a list (``conv`` would also hit ``blocks.0.conv``).
        target_modules="|".join(re.escape(n) for n in names),
    )
    peft.inject_adapter_in_model(config, model, adapter_name=ADAPTER_NAME)
    # peft stores its config on the model for PeftModel; a plain backbone has no use for it.
    if "peft_config" in model.__dict__:
        del model.__dict__["peft_config"]
    for p in model.parameters():
        p.requires_grad_(requires_grad.get(id(p), True))  # new (adapter) parameters train by default
    wrapped = [n for n, m in model.named_modules() if isinstance(m, peft.tuners.lora.LoraLayer)]
    if sorted(wrapped) != sorted(names):
        raise RuntimeError(f"peft wrapped {sorted(set(wrapped) ^ set(names))[:5]} unlike asked")
    return wrapped


def lora_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The peft LoRA layers inside ``model`` (outermost only), with their names; empty without peft."""
    if not any("lora_" in n for n, _ in model.named_parameters()):
        return []  # cheap exit that also avoids importing peft for models that never had an adapter
    from peft.tuners.lora import LoraLayer

    found: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and not any(name.startswith(f + ".") for f, _ in found):
            found.append((name, module))
    return found


def merge_lora(model: nn.Module) -> int:
    """Fold every LoRA update into its base weight and put the base layer back in the wrapper's place.

    Afterwards ``model`` has exactly the plain architecture's modules and ``state_dict`` keys.

    Args:
        model: A module holding peft LoRA layers (any depth).

    Returns:
        The number of layers merged.
    """
    layers = lora_layers(model)
    for name, layer in layers:
        layer.merge(safe_merge=True)  # safe: refuses to write NaN/inf weights into the export
        base = layer.get_base_layer()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, base)
    return len(layers)
