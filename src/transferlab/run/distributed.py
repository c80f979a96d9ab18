"""Lightning DDP under Hydra: one output dir for all ranks, rank-zero-only outputs, ranks checked in sync.

Lightning's ``ddp`` strategy starts ranks 1..N-1 by running the command line again. Its Hydra support rebuilds
that command from ``sys.argv``, which does not hold ``transferlab train`` (the dispatcher's subcommand) and, in
a sweep, holds the whole sweep. :func:`use_job_command_for_ranks` makes the other ranks run exactly this job
instead: ``python -m transferlab.cli.main train <the job's overrides> hydra.run.dir=<this run dir>`` with
Hydra's ``.hydra/`` output and INFO logging off, so all ranks share one run dir, one TensorBoard run and one
checkpoint set, and only rank 0 writes them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

import torch

from transferlab.config.compose import quote_override_value
from transferlab.errors import ConfigError

log = logging.getLogger(__name__)

# Lightning's strategy names that start the other ranks by re-running the command line ("popen").
_SCRIPT_LAUNCHED = ("ddp", "ddp_find_unused_parameters_true", "ddp_find_unused_parameters_false")
# Environments that start every rank themselves (torchrun, SLURM tasks): nothing is re-launched.
_EXTERNAL_RANK_VARS = ("TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


def is_rank_zero() -> bool:
    """Whether this process is the global rank 0 (always true outside distributed training)."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0 and int(os.environ.get("NODE_RANK", "0") or 0) == 0


def world_size(trainer_cfg: Mapping[str, Any]) -> int:
    """Processes the ``trainer`` config asks for (``devices`` × ``num_nodes``; ``auto``/lists count as given)."""
    devices = trainer_cfg.get("devices", 1)
    if isinstance(devices, (list, tuple)):
        count = len(devices)
    elif isinstance(devices, int):
        count = devices
    elif isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        count = int(devices)
    else:  # "auto" / -1: every visible device
        count = torch.cuda.device_count() if str(trainer_cfg.get("accelerator", "auto")) != "cpu" else 1
    if count == -1:
        count = torch.cuda.device_count()
    return max(1, count) * int(trainer_cfg.get("num_nodes", 1) or 1)


def is_script_launched_ddp(trainer_cfg: Mapping[str, Any]) -> bool:
    """Whether Lightning would start more ranks by re-running the command (``strategy: ddp``, > 1 process)."""
    strategy = trainer_cfg.get("strategy", "auto")
    return isinstance(strategy, str) and strategy in _SCRIPT_LAUNCHED and world_size(trainer_cfg) > 1


def _ranks_started_externally() -> bool:
    return any(os.environ.get(var) not in (None, "", "1") for var in _EXTERNAL_RANK_VARS)


def check_ddp_launch(cfg: Mapping[str, Any], multirun: bool) -> None:
    """Refuse DDP inside a local multirun, before anything loads; quiet INFO logging on ranks > 0.

    Args:
        cfg: The composed config (its ``trainer`` group is read).
        multirun: Whether Hydra runs this job as part of a sweep (``-m``).

    Raises:
        ConfigError: For ``trainer.strategy=ddp`` with more than one process in a local sweep.
    """
    trainer_cfg = cfg.get("trainer") or {}
    if not is_rank_zero():
        logging.getLogger("transferlab").setLevel(logging.WARNING)
    if multirun and is_script_launched_ddp(trainer_cfg) and not _ranks_started_externally():
        raise ConfigError(
            f"trainer.strategy={trainer_cfg.get('strategy')} with {world_size(trainer_cfg)} processes inside a "
            "multirun (-m): Lightning starts the other ranks by re-running the command line, which a sweep "
            "cannot do. Fix: run each job on its own ('transferlab train trainer=ddp_cpu ...' without -m), or "
            "sweep on a cluster where SLURM starts the ranks (hydra/launcher=slurm with "
            "hydra.launcher.tasks_per_node equal to trainer.devices), or keep trainer.devices=1 in local sweeps "
            "and parallelise over jobs with hydra/launcher=parallel."
        )


def job_command_for_rank(local_rank: int) -> tuple[list[str], str]:
    """The command and working dir that start ``local_rank`` of this Hydra job (see module docstring)."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    command = [
        sys.executable,
        "-m",
        "transferlab.cli.main",
        "train",
        *hydra_cfg.overrides.task,
        f"hydra.run.dir={quote_override_value(str(hydra_cfg.runtime.output_dir))}",
        "hydra.output_subdir=null",  # rank 0 alone writes .hydra/
        f"hydra.job.name=rank{local_rank}",  # its own job log, rank<k>.log, for warnings and errors
        "hydra.job_logging.root.level=WARNING",  # rank-zero-only INFO logging
        "hydra.mode=RUN",
    ]
    return command, str(hydra_cfg.runtime.cwd)


def use_job_command_for_ranks() -> None:
    """Make Lightning's script launcher start the other ranks with :func:`job_command_for_rank`.

    Lightning imports ``_hydra_subprocess_cmd`` by name into its launcher module; replacing that name is the
    one seam it offers (its own version re-runs ``sys.argv``, see the module docstring).
    """
    from lightning.pytorch.strategies.launchers import subprocess_script

    subprocess_script._hydra_subprocess_cmd = job_command_for_rank


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the exact bytes of every tensor (name, dtype, shape, values) of a state dict."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(state[name].shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def check_ranks_in_sync(module: torch.nn.Module, label: str) -> list[str] | None:
    """Gather every rank's weight digest after a fit and fail loudly if they differ.

    Args:
        module: The trained module (same on every rank under DDP, unless something is wrong).
        label: The plan step, for the error message.

    Returns:
        The digests by rank, or ``None`` outside distributed training.

    Raises:
        RuntimeError: If any rank holds different weights.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    mine = state_digest(module.state_dict())
    digests: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(digests, mine)
    if len(set(digests)) != 1:
        raise RuntimeError(f"after step {label!r} the DDP ranks hold different weights: {digests}")
    log.info("step %s: weights identical on all %d ranks (sha256 %s…)", label, len(digests), mine[:12])
    return [str(d) for d in digests]
