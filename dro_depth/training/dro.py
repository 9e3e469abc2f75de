"""The DRO training recipe: train DRO, supervised or self-supervised, on synthetic scenes, ROS 2 bags or folders.

    dro-depth train --config dro_depth/configs/default_model.yaml --out runs/default [--steps N] [--resume]

The command line (`dro-depth train`, :mod:`dro_depth.training.command`) picks this recipe for ``model: dro``.

Everything about a run is in its YAML config (see :class:`TrainConfig`); command-line flags override a few
fields. The output folder holds:

    config.yaml                 the resolved config
    last.safetensors            model weights (resumable; ``load_dro`` reads it)
    last.optim.safetensors      optimizer state + step (for --resume)
    losses.csv  losses.png      loss curves
    final.safetensors           the finished model (fp16 storage when ``save_half``)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict

import torch

from dro_depth.models.dro import build_dro, load_dro, save_dro

from .distributed import (all_finite, average_gradients, broadcast_parameters, check_in_sync,
                          distributed_batches, init_distributed, shutdown)
from .loop import (DataConfig, RunConfig, batch_stream, load_sequences, optimise, plot_losses, prepare_run,
                   resumable_optimizer)
from .losses import self_supervised_loss, supervised_loss
from .mixed_precision import enable_bf16_regions

__all__ = ['TrainConfig', 'build_dataset', 'train']

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig(RunConfig):
    mode: str = 'supervised'              # supervised | self_supervised
    steps: int = 2000
    batch_size: int = 4
    lr: float = 2e-4
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    iterations: int = 8                   # DRO update steps during training
    gamma: float = 0.8                    # per-iteration loss decay toward early steps
    pose_weight: float = 0.05
    smooth_weight: float = 1e-3
    height: int = 128                     # network resolution
    width: int = 160
    hidden: int = 128                     # GRU hidden size (128 = official 'h' variants)
    init_checkpoint: str = ''             # fine-tune from these weights
    seed: int = 0
    device: str = 'auto'
    threads: int = 0
    log_every: int = 10
    ckpt_every: int = 200
    keep_every: int = 0                   # also keep OUT/step-NNNNNN.safetensors (fp16) every N steps (0: off)
    save_half: bool = True
    bf16: bool = False                    # bf16 autocast of the conv sub-networks (geometry stays float32)
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> None:
        if self.mode not in ('supervised', 'self_supervised'):
            raise ValueError(f"mode must be 'supervised' or 'self_supervised', got {self.mode!r}")
        if self.height % 16 or self.width % 16:
            raise ValueError(f'height/width must be multiples of 16, got {self.height}x{self.width}')
        if self.steps < 1 or self.batch_size < 1 or self.iterations < 0:
            raise ValueError('steps and batch_size must be >= 1 and iterations >= 0')
        if self.keep_every and self.keep_every % self.ckpt_every:
            raise ValueError(f'keep_every ({self.keep_every}) must be a multiple of ckpt_every ({self.ckpt_every})')
        if self.data.source not in ('synthetic', 'bag', 'folder'):
            raise ValueError(f"data.source must be synthetic, bag or folder, got {self.data.source!r}")



def build_dataset(cfg: TrainConfig):
    """The torch Dataset of (target, references) samples described by ``cfg.data``."""
    from dro_depth.data.dataset import SequenceDataset

    seqs = load_sequences(cfg.data, need_ground_truth=cfg.mode == 'supervised')
    logger.info('training on %d sequences, %d frames', len(seqs), sum(len(s) for s in seqs))
    return SequenceDataset(seqs, offsets=cfg.data.ref_offsets, height=cfg.height, width=cfg.width,
                           skip_static=cfg.mode == 'supervised')


def _save_checkpoint(model, cfg: TrainConfig, path: Path, step: int) -> None:
    """``last.safetensors`` (float32, resumable) and, every ``cfg.keep_every`` steps, a kept fp16 snapshot
    ``step-NNNNNN.safetensors`` next to it (what a learning curve evaluates)."""
    save_dro(model, path, metadata={'step': str(step)})
    if cfg.keep_every and step % cfg.keep_every == 0:
        save_dro(model, path.parent / f'step-{step:06d}.safetensors', half=True,
                 metadata={'step': str(step), 'iterations': str(cfg.iterations)})


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
          dataset=None) -> Path:
    """Run training; returns the path of the final safetensors model (``dataset``: prebuilt samples,
    else :func:`build_dataset` of ``cfg``)."""
    out, device = prepare_run(cfg, out_dir)
    ctx, device = init_distributed(device)

    if resume and (out / 'last.safetensors').is_file():
        model = load_dro(str(out / 'last.safetensors'), device=device, dtype=torch.float32)
    elif cfg.init_checkpoint:
        model = load_dro(cfg.init_checkpoint, device=device, dtype=torch.float32)
    else:
        model = build_dro(hidden_dim=cfg.hidden).to(device)
    model.train()
    if cfg.bf16:
        enable_bf16_regions(model, device.type)
    opt, sched, start = resumable_optimizer(model, cfg, out, resume)
    broadcast_parameters(model, ctx)
    dataset = build_dataset(cfg) if dataset is None else dataset
    batches = distributed_batches(dataset, cfg.batch_size, cfg.seed + start, ctx) if ctx.enabled \
        else batch_stream(dataset, cfg, start)
    keys = ('image', 'refs', 'K', 'depth', 'T_ref_tgt')

    def losses_of(raw: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        batch = {k: v.to(device, non_blocking=True) for k, v in raw.items() if k in keys}
        out_m = model(batch['image'], batch['refs'], batch['K'], iterations=cfg.iterations)
        if cfg.mode == 'supervised':
            return supervised_loss(out_m, batch['depth'], batch['T_ref_tgt'], batch['K'], cfg.gamma,
                                   cfg.pose_weight)
        return self_supervised_loss(out_m, batch['image'], batch['refs'], batch['K'], cfg.gamma,
                                    cfg.smooth_weight)

    optimise(model, opt, sched, batches, losses_of, out, start=start, steps=cfg.steps, grad_clip=cfg.grad_clip,
             log_every=cfg.log_every, ckpt_every=cfg.ckpt_every, desc=f'train {cfg.mode}', progress=progress,
             save_weights=lambda path, step: _save_checkpoint(model, cfg, path, step),
             is_writer=ctx.is_writer, finite=lambda loss: all_finite(loss, ctx),
             samples_per_step=cfg.batch_size * ctx.world_size,
             after_backward=(lambda: average_gradients(model, ctx)) if ctx.enabled else None)
    check_in_sync(model, ctx)
    if not ctx.is_writer:
        shutdown(ctx)
        return out / 'final.safetensors'
    final = out / 'final.safetensors'
    save_dro(model.eval(), final, half=cfg.save_half,
             metadata={'height': str(cfg.height), 'width': str(cfg.width), 'mode': cfg.mode,
                       'steps': str(cfg.steps), 'iterations': str(cfg.iterations)})
    plot_losses(out / 'losses.csv', out / 'losses.png')
    logger.info('final model: %s', final)
    shutdown(ctx)
    return final
