"""Multi-process (``torchrun``) training helpers shared by every bundle's ``multi_gpu_train.json``.

The engines reach into their networks (``network.encoder``, ``network.encode(...)``,
``network.curvature``, a frozen ``network.prior``) and some of them never call the network's
``forward`` (Soft-Intro's encoder/decoder steps, the anatomical prior's encoder pre-training).
:class:`torch.nn.parallel.DistributedDataParallel` only averages gradients for backward passes
that started in *its* ``forward``, so these helpers make every engine correct under DDP:

* :func:`unwrap_module` gives the wrapped network for attribute access (engines use it instead
  of ``engine.network.<attr>``);
* :func:`wrap_ddp` wraps a network in DDP and marks every training ``forward`` that went through
  DDP, so :func:`sync_gradients` (called by every engine before ``optimizer.step()``) averages the
  gradients of the other backward passes itself, once, and leaves DDP's own passes alone;
* :func:`init_distributed` / :func:`destroy_distributed` open and close the process group
  (``nccl`` on CUDA, ``gloo`` on CPU) and give the process's device (``cuda:LOCAL_RANK`` or cpu);
* :func:`rank_zero_handlers` drops logging, TensorBoard, MLflow, progress-bar and checkpoint
  handlers on ranks other than 0 (rank 0 writes every file).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "broadcast_module",
    "destroy_distributed",
    "init_distributed",
    "is_rank_zero",
    "rank_zero_handlers",
    "sync_gradients",
    "unwrap_module",
    "wrap_ddp",
]

_FORWARD_FLAG = "_genvq_ddp_forward_synced"


def unwrap_module(network: nn.Module) -> nn.Module:
    """The network inside a ``DistributedDataParallel``/``DataParallel`` wrapper (else the network itself).

    Example:
        >>> net = torch.nn.Linear(2, 2)
        >>> unwrap_module(torch.nn.DataParallel(net)) is net
        True
    """
    while isinstance(network, (DistributedDataParallel, nn.DataParallel)):
        network = network.module
    return network


def is_rank_zero() -> bool:
    """True when not distributed or on global rank 0 (``torchrun``'s ``RANK`` before the group opens)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", 0)) == 0


def _discard_writer(handler: Any) -> None:
    """Close a dropped TensorBoard handler's writer and delete the (empty) event file it opened when built."""
    writer = getattr(handler, "_writer", None)
    if writer is None or not getattr(handler, "internal_writer", False):
        return
    event_writer = getattr(getattr(writer, "file_writer", None), "event_writer", None)
    name = getattr(event_writer, "_file_name", None)
    writer.close()
    if name and os.path.isfile(name):
        os.remove(name)


def init_distributed(backend: str | None = None) -> torch.device:
    """Open the default process group from ``torchrun``'s environment and return this process's device.

    ``nccl`` and ``cuda:LOCAL_RANK`` when CUDA is available, else ``gloo`` and cpu. Idempotent (a
    second call returns the device without re-initialising); without ``torchrun``'s environment
    (no ``WORLD_SIZE``) it opens nothing and returns the single-process device.

    Args:
        backend: process-group backend; by default ``nccl`` if CUDA is available else ``gloo``.

    Example:
        >>> init_distributed()  # outside torchrun: no process group  # doctest: +SKIP
        device(type='cpu')
    """
    cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if "WORLD_SIZE" in os.environ and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend=backend or ("nccl" if cuda else "gloo"))
    return device


def destroy_distributed() -> None:
    """Close the default process group if one is open (the bundles' ``finalize``)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _mark_forward(module: nn.Module, args: Any) -> None:
    if module.training and torch.is_grad_enabled():
        setattr(module, _FORWARD_FLAG, True)


def wrap_ddp(
    network: nn.Module, device: torch.device | str | None = None, find_unused_parameters: bool = True, **kwargs: Any
) -> nn.Module:
    """Wrap ``network`` in :class:`~torch.nn.parallel.DistributedDataParallel` (no-op without a process group).

    ``find_unused_parameters`` defaults to True: several models leave trainable parameters out of
    some forward passes (a quantizer's unused codes, a VAE encoder frozen for the decoder step).

    Args:
        network: the module, already on ``device``.
        device: its device; ``device_ids=[device]`` for CUDA, none for cpu.
        find_unused_parameters: as DDP.
        kwargs: more DDP arguments.

    Example:
        >>> wrap_ddp(torch.nn.Linear(2, 2))  # outside a process group: returned unchanged
        Linear(in_features=2, out_features=2, bias=True)
    """
    if not (dist.is_available() and dist.is_initialized()):
        return network
    device = torch.device(device) if device is not None else next(network.parameters()).device
    ids = [device] if device.type == "cuda" else None
    ddp = DistributedDataParallel(network, device_ids=ids, find_unused_parameters=find_unused_parameters, **kwargs)
    ddp.register_forward_pre_hook(_mark_forward)
    return ddp


def sync_gradients(network: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Average gradients across processes when the last backward did not go through DDP's ``forward``.

    Call it between ``backward()`` and ``optimizer.step()``. No-op for a network that is not a
    :func:`wrap_ddp` DDP module, and for a backward that started in DDP's ``forward`` (DDP averaged
    those already). Only the parameters of ``optimizer`` (all trainable ones by default) that have
    a gradient are reduced; every process runs the same code, so they agree on that set.

    Args:
        network: the engine's network (possibly DDP-wrapped).
        optimizer: the optimiser about to step.
    """
    if not isinstance(network, DistributedDataParallel) or not dist.is_initialized():
        return
    if getattr(network, _FORWARD_FLAG, False):
        setattr(network, _FORWARD_FLAG, False)
        return
    params: Iterable[torch.Tensor] = (
        (p for g in optimizer.param_groups for p in g["params"])
        if optimizer is not None
        else network.module.parameters()
    )
    world = dist.get_world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(world)


def broadcast_module(network: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every process (after a data-dependent init)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    with torch.no_grad():
        for t in list(unwrap_module(network).parameters()) + list(unwrap_module(network).buffers()):
            dist.broadcast(t.data, src)


_RANK_ZERO_TYPES = (
    "StatsHandler",
    "TensorBoardStatsHandler",
    "TensorBoardImageHandler",
    "MLFlowHandler",
    "ClearMLStatsHandler",
    "CheckpointSaver",
    "AtomicCheckpointSaver",
    "ProgressBar",
    "StreamlineWriter",
)


def rank_zero_handlers(handlers: Sequence | None) -> list:
    """The handlers to attach on this process: all on rank 0, on other ranks none of the writers.

    Logging, TensorBoard, MLflow, progress bars and checkpoint savers only run on rank 0 (they
    would write the same files from every process); everything else (validation, LR schedules,
    :class:`~monai_genvq.handlers.ResumeFromLatest` loading) runs everywhere.

    Args:
        handlers: instantiated handlers (the bundle's ``train#handlers``).

    Example:
        >>> rank_zero_handlers([])  # single process: unchanged
        []
    """
    handlers = list(handlers or [])
    if is_rank_zero():
        return handlers
    kept = []
    for h in handlers:
        if any(t.__name__ in _RANK_ZERO_TYPES for t in type(h).__mro__):
            _discard_writer(h)
        else:
            kept.append(h)
    return kept
