"""
What the bundle's ``multi_gpu_*.json`` configs need under ``torchrun``: the process group (NCCL on
CUDA, gloo on CPU, with a timeout), this rank's device, one run directory for all ranks, INFO logging on
rank 0 only, per-rank data partitions and a friendly check that every rank has a case. Handlers that write
files are switched off on the other ranks in the configs themselves (``"_disabled_": "@is_not_rank0"``).

Every helper also works in a single process (no ``torchrun``): rank 0 of a world of 1.
"""

from __future__ import annotations

import datetime
import gc
import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "barrier",
    "check_cases_per_rank",
    "destroy_process_group",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_main_process",
    "local_device",
    "partition_for_rank",
    "shared_timestamp",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 1800
"""Default process-group timeout (seconds): how long a rank waits in a collective for the others."""


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's rank in the default process group; 0 without one."""
    return dist.get_rank() if _initialized() else 0


def get_world_size() -> int:
    """The number of processes in the default process group; 1 without one."""
    return dist.get_world_size() if _initialized() else 1


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the rank that writes files and logs."""
    return get_rank() == 0


def local_device() -> torch.device:
    """``cuda:<LOCAL_RANK>`` when CUDA is available (one GPU per process), else the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def init_process_group(
    timeout: float = DEFAULT_TIMEOUT_S, backend: str | None = None, quiet_other_ranks: bool = True
) -> str:
    """
    Create the default process group of a ``torchrun`` launch: NCCL when CUDA is available, gloo
    otherwise (DDP on CPU), with ``timeout`` seconds for every collective, so a rank whose peer hangs
    raises instead of waiting forever (``torchrun`` then stops the other ranks). Does nothing when
    the group already exists.

    Args:
        timeout: process-group timeout in seconds (the bundle's ``dist_timeout``); default 1800.
        backend: ``"nccl"`` or ``"gloo"``; default: chosen from the device as above.
        quiet_other_ranks: on ranks other than 0, raise the root logger's level to WARNING, so the
            engines' INFO lines (epoch complete, best metric, ...) are printed once, by rank 0;
            warnings and errors still show from every rank.

    Returns:
        the backend in use.

    Raises:
        RuntimeError: when the process was not started by ``torchrun`` (no ``RANK``/``WORLD_SIZE``).

    Example::

        # configs/multi_gpu_train.json:
        # "initialize": ["$monai_ag.utils.distributed.init_process_group(timeout=@dist_timeout)", ...]
        init_process_group(timeout=600)
    """
    if _initialized():
        return dist.get_backend()
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(
            f"the multi_gpu_*.json configs must be started with torchrun (environment lacks {missing}), e.g. "
            "torchrun --standalone --nproc_per_node=2 -m monai.bundle run --config_file "
            "\"['configs/train.json','configs/multi_gpu_train.json']\"; without torchrun use configs/train.json alone."
        )
    seconds = float(timeout)
    if seconds <= 0:
        raise ValueError(f"dist_timeout must be a positive number of seconds, got {timeout!r}.")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_device())
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=seconds))
    if is_main_process():
        logger.info("process group: %s, %d ranks, timeout %g s", backend, get_world_size(), seconds)
    elif quiet_other_ranks:
        logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))
    return backend


def destroy_process_group() -> None:
    """
    Destroy the default process group if there is one (the configs' ``finalize``), after a barrier:
    rank 0 finishes later than the others (it alone writes checkpoints and tracking), and a rank
    that tore down its gloo connections and exited while a peer still used them was seen to abort
    at exit (SIGABRT, "terminate called without an active exception"), failing a finished run.
    """
    if _initialized():
        dist.barrier()
        dist.destroy_process_group()
        gc.collect()  # release what still refers to the group (communication work, buffers) while Python is alive


def barrier() -> None:
    """Wait until every rank gets here (no-op in a single process)."""
    if _initialized():
        dist.barrier()


_SHARED_STAMP: str | None = None


def _launched_with_several_ranks() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def shared_timestamp(fmt: str = "%Y%m%d-%H%M%S", timeout: float = DEFAULT_TIMEOUT_S) -> str:
    """
    Rank 0's current time formatted with ``fmt``, the same string on every rank (broadcast) and for the
    whole process (it is computed once), so all ranks agree on one run directory even when their clocks
    tick over a second apart or the config is evaluated twice.

    Under ``torchrun`` the process group is needed for the broadcast: when the time stamp is asked for
    before ``initialize`` (``--tracking mlflow`` makes MONAI evaluate ``output_dir`` while building the
    workflow), the group is created here, with ``timeout``, and ``initialize`` then finds it in place.

    Args:
        fmt: ``datetime.strftime`` format.
        timeout: process-group timeout in seconds if the group has to be created here.

    Example::

        # configs/multi_gpu_train.json
        "run_dir": "$@bundle_root + '/runs/' + monai_ag.utils.distributed.shared_timestamp(timeout=@dist_timeout)"
    """
    global _SHARED_STAMP
    if _SHARED_STAMP is not None:
        return _SHARED_STAMP
    if not _initialized() and _launched_with_several_ranks():
        init_process_group(timeout=timeout)
    stamp = [datetime.datetime.now().strftime(fmt)]
    if get_world_size() > 1:
        dist.broadcast_object_list(stamp, src=0)
        _SHARED_STAMP = str(stamp[0])
    return str(stamp[0])


def check_cases_per_rank(
    data: Sequence[Any], what: str = "validation", config_id: str = "", allow_empty: bool = False
) -> Sequence[Any]:
    """
    Stop with a clear message when ``data`` has fewer cases than there are ranks: distributed
    validation and evaluation give each rank its own cases without padding duplicates (every case
    counted exactly once), so each rank needs at least one.

    Args:
        data: the datalist (or dataset) to be split between the ranks.
        what: what it is, for the message ("validation", "evaluation").
        config_id: the config id it comes from, for the message.
        allow_empty: no cases at all is fine (a training without validation).

    Returns:
        ``data`` unchanged.

    Example::

        "initialize": ["...", "$monai_ag.utils.distributed.check_cases_per_rank(@data, 'validation', 'data')"]
    """
    n, world = len(data), get_world_size()
    if n < world and not (allow_empty and n == 0):
        # MONAI's config parser rewrites the id separator "#" as "::" inside expressions: show the form users type
        where = f" ({config_id.replace('::', '#')})" if config_id else ""
        raise ValueError(
            f"the {what} data{where} has {n} case(s) but {world} processes were started: distributed {what} gives "
            f"every process its own cases and counts each case exactly once, so it needs at least {world} cases. "
            f"Add {what} cases or start at most {max(n, 1)} process(es) (torchrun --nproc_per_node/--nnodes)."
        )
    return data


def partition_for_rank(data: Sequence[Any], shuffle: bool = True, seed: int = 0) -> list[Any]:
    """
    This rank's share of ``data`` (``monai.data.partition_dataset`` with ``even_divisible=True``: equal
    shares, padded with repeats), so a ``CacheDataset`` on each rank caches only its own cases. The
    shares stay fixed for the whole run (no global reshuffle between epochs); use it with a plain
    shuffling ``DataLoader``, not with a ``DistributedSampler``.

    Args:
        data: the full training datalist.
        shuffle: shuffle before splitting (with ``seed``; the same split on every rank).
        seed: the shuffle seed.

    Example::

        "train#dataset#data": "$monai_ag.utils.distributed.partition_for_rank(@datalists[0], seed=@seed)"
    """
    from monai.data import partition_dataset

    world = get_world_size()
    if world == 1:
        return list(data)
    check_cases_per_rank(data, "training")
    return partition_dataset(data, num_partitions=world, shuffle=shuffle, seed=seed, even_divisible=True)[get_rank()]
