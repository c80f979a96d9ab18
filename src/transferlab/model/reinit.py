"""Share the first K layer groups: re-initialise the groups above them (transfer depth, Yosinski et al. 2014)."""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from transferlab.model.freeze import GroupIndex


def reinitialize_groups(backbone: nn.Module, first_new: int) -> list[str]:
    """Re-initialise every layer group with index ≥ ``first_new``; the groups below keep their weights.

    Each module whose own parameters all lie in new groups gets its ``reset_parameters()`` (the layer type's
    default initialisation); BatchNorm layers also forget their running statistics.

    Args:
        backbone: The backbone, with its loaded (pretrained) weights.
        first_new: Number of shared groups K; groups ``K, K+1, …`` are re-initialised.

    Returns:
        Names of the re-initialised groups.

    Raises:
        ValueError: If a parameter of a new group sits in a module without ``reset_parameters``.
    """
    index = GroupIndex(backbone)
    new_names = {n for group in index.groups[first_new:] for n in group.param_names}
    done: set[str] = set()
    for mod_name, module in backbone.named_modules():
        own = [f"{mod_name}.{p}" if mod_name else p for p, _ in module.named_parameters(recurse=False)]
        if not own or not all(n in new_names for n in own):
            continue
        if not hasattr(module, "reset_parameters"):
            raise ValueError(f"cannot re-initialise {mod_name} ({type(module).__name__}): no reset_parameters()")
        module.reset_parameters()  # BatchNorm's also resets its running statistics
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
        done.update(own)
    left = new_names - done
    if left:
        raise ValueError(f"parameters not re-initialised: {sorted(left)[:5]}")
    return [g.name for g in index.groups[first_new:]]
