"""Data-parallel training under ``torchrun``: process group, per-rank device, sampler, one writer, sync check.

    torchrun --nproc-per-node N -m dro_depth.cli train --config CONFIG --out OUT [--resume]

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every helper is a no-op and training runs as one process.
With it, each rank trains on its own shard of every epoch (:class:`~torch.utils.data.DistributedSampler`,
reshuffled per epoch from ``cfg.seed + start``, so a resumed run does not replay its first batches),
gradients are averaged across ranks after every backward (:func:`average_gradients`; gloo on CPU, NCCL
on CUDA, one GPU per rank from ``LOCAL_RANK``), and only rank 0 writes the CSV, checkpoints and plots. The
effective batch is ``world_size x batch_size``. At the end :func:`check_in_sync` compares a checksum of
every rank's parameters: ranks that drifted apart (a rank skipped a step alone) raise instead of saving.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Dict, Iterator

import torch
import torch.distributed as dist

__all__ = ['DistContext', 'init_distributed', 'broadcast_parameters', 'average_gradients',
           'distributed_batches', 'check_in_sync', 'all_finite', 'shutdown']

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a ``torchrun`` job (``world_size == 1``: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_writer(self) -> bool:
        """Only rank 0 writes files and shows a progress bar."""
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the ``torchrun`` process group when ``WORLD_SIZE > 1``: ``(context, device of this rank)``.

    CUDA ranks use NCCL and ``cuda:LOCAL_RANK``; CPU ranks use gloo and split the configured threads.
    """
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return DistContext(), device
    ctx = DistContext(int(os.environ['RANK']), world, int(os.environ.get('LOCAL_RANK', '0')))
    if device.type == 'cuda':
        device = torch.device('cuda', ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    logger.info('rank %d of %d on %s (%s)', ctx.rank, world, device, dist.get_backend())
    return ctx, device


def broadcast_parameters(model: torch.nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's parameters and buffers (after loading or initialising them)."""
    if not ctx.enabled:
        return
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(model: torch.nn.Module, ctx: DistContext) -> None:
    """Average the gradients of all ranks in one flat all-reduce (call between backward and the step).

    Explicit data parallelism rather than :class:`~torch.nn.parallel.DistributedDataParallel`: DRO's
    per-iteration upsampling runs lazily after ``forward`` (``DROOutput.inv_depth_iters``), which DDP's
    autograd hooks reject (or, with ``static_graph``, silently leave out of sync). Parameters without a
    gradient (DRO's unused ``cnet``) are skipped on every rank alike.
    """
    if not ctx.enabled:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def distributed_batches(dataset, batch_size: int, seed: int,
                        ctx: DistContext) -> Iterator[Dict[str, torch.Tensor]]:
    """Endless batches of this rank's shard; epoch ``e`` is shuffled with ``seed + e`` on every rank."""
    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                                  shuffle=True, seed=seed, drop_last=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                                         num_workers=0)
    if len(loader) == 0:
        raise ValueError(f'{len(dataset)} samples cannot fill one batch of {batch_size} on each of '
                         f'{ctx.world_size} ranks: lower batch_size or add data')
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def all_finite(loss: torch.Tensor, ctx: DistContext) -> bool:
    """Whether the loss is finite on every rank (so all ranks skip a bad batch together)."""
    finite = torch.isfinite(loss.detach()).all()
    if not ctx.enabled:
        return bool(finite)
    flag = finite.to(torch.float32).reshape(1)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item() > 0)


def check_in_sync(model: torch.nn.Module, ctx: DistContext, rtol: float = 1e-6) -> float:
    """Compare a float64 checksum of all parameters across ranks; returns it.

    Raises:
        RuntimeError: the ranks' parameters differ (they would save different models).
    """
    with torch.no_grad():
        total = sum(p.detach().double().abs().sum() + p.detach().double().sum() for p in model.parameters())
    total = total.detach().cpu().reshape(1)
    if ctx.enabled:
        gathered = [torch.zeros_like(total) for _ in range(ctx.world_size)]
        if dist.get_backend() == 'nccl':
            dev = torch.device('cuda', torch.cuda.current_device())
            gathered_dev = [g.to(dev) for g in gathered]
            dist.all_gather(gathered_dev, total.to(dev))
            gathered = [g.cpu() for g in gathered_dev]
        else:
            dist.all_gather(gathered, total)
        values = torch.cat(gathered)
        spread = float((values.max() - values.min()).abs() / values.abs().max().clamp(min=1e-12))
        if spread > rtol:
            raise RuntimeError(f'ranks out of sync: parameter checksums {values.tolist()} '
                               f'differ by {spread:.3g}')
        logger.info('ranks in sync: parameter checksum %.9g on all %d ranks', float(total), ctx.world_size)
    return float(total)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (after a barrier, so no rank exits while another still saves)."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
