"""The stereo training recipe: RAFT-Stereo with the NeRF-Supervised losses on rendered triplets.

    dro-depth train --config dro_depth/configs/stereo_default.yaml --out runs/stereo [--steps N] [--resume]

``model: stereo`` in the YAML picks this recipe. Data: synthetic triplets rendered in memory
(``data.source: synthetic``, AO-like confidence from :func:`dro_depth.data.triplets.render_confidence`) or
the NeRF-Supervised layout (``data.source: ns``, ``data.paths`` = list files). The network sees
(centre, right) and predicts the centre-view disparity; losses follow NS (proxy L1 where AO is confident +
triplet photometric weighted by 1-AO), with RAFT-Stereo's sequence weights, frozen batch-norm statistics,
AdamW and a linear one-cycle schedule (as the NS reproduction). The output folder holds ``config.yaml``,
``last.safetensors`` (+ optimizer state, resumable), ``losses.csv``/``losses.png`` and ``final.safetensors``
(which :func:`dro_depth.models.stereo.load_raft_stereo` reads).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict

import torch

from dro_depth.errors import DroDepthError
from dro_depth.models.checkpoints import save_state_dict
from dro_depth.models.stereo import NS_RELEASE, REALTIME, RAFTStereo, load_raft_stereo

from .loop import DataConfig, RunConfig, batch_stream, optimise, plot_losses, prepare_run, resumable_optimizer
from .stereo_losses import NSLossConfig, ns_sequence_loss

__all__ = ['StereoTrainConfig', 'TripletTensorDataset', 'build_triplet_dataset', 'freeze_batch_norm',
           'one_cycle', 'train_stereo']

logger = logging.getLogger(__name__)

_VARIANTS = {'realtime': REALTIME, 'ns_release': NS_RELEASE}


@dataclass
class StereoTrainConfig(RunConfig):
    """Stereo training run (``model: stereo``)."""

    model: str = 'stereo'
    variant: str = 'realtime'             # realtime (fast CPU variant) | ns_release
    steps: int = 2000
    batch_size: int = 2
    lr: float = 2e-4
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    train_iters: int = 8                  # GRU iterations while training (NS: 22)
    crop_height: int = 96                 # random crop, multiples of 32
    crop_width: int = 128
    baseline: float = 0.2                 # synthetic triplets: centre-to-side distance, metres
    alpha_disp: float = 1.0
    alpha_photo: float = 0.1
    ao_threshold: float = 0.5
    max_disparity: float = 512.0
    init_checkpoint: str = ''
    seed: int = 0
    device: str = 'auto'
    threads: int = 0
    log_every: int = 10
    ckpt_every: int = 200
    save_half: bool = True
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> None:
        if self.variant not in _VARIANTS:
            raise DroDepthError(f'variant must be one of {sorted(_VARIANTS)}, got {self.variant!r}')
        if self.crop_height % 32 or self.crop_width % 32:
            raise DroDepthError(f'crop must be multiples of 32, got {self.crop_height}x{self.crop_width}')
        if self.steps < 1 or self.batch_size < 1 or self.train_iters < 1:
            raise DroDepthError('steps, batch_size and train_iters must be >= 1')
        if self.data.source not in ('synthetic', 'ns'):
            raise DroDepthError(f"stereo data.source must be 'synthetic' or 'ns', got {self.data.source!r}")


class TripletTensorDataset(torch.utils.data.Dataset):
    """Triplet samples as dicts, random crop + left/right mirror (flip and swap the side views)."""

    def __init__(self, samples: list, crop: tuple[int, int], seed: int = 0) -> None:
        self.samples = samples
        self.crop = crop
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        s = self.samples[i]
        views = {'left': s.left, 'centre': s.centre, 'right': s.right, 'disparity': s.disparity, 'ao': s.ao}
        h, w = s.centre.shape[-2:]
        ch, cw = min(self.crop[0], h), min(self.crop[1], w)
        y = int(torch.randint(0, h - ch + 1, (1,), generator=self.gen))
        x = int(torch.randint(0, w - cw + 1, (1,), generator=self.gen))
        views = {k: v[:, y:y + ch, x:x + cw] for k, v in views.items()}
        if bool(torch.rand(1, generator=self.gen) < 0.5):
            flipped = {k: v.flip(-1) for k, v in views.items()}
            views = {**flipped, 'left': flipped['right'], 'right': flipped['left']}
        return {k: v.contiguous() for k, v in views.items()}


def build_triplet_dataset(cfg: StereoTrainConfig) -> TripletTensorDataset:
    """Render (synthetic) or read (NS layout) the training triplets of ``cfg.data``."""
    from dro_depth.data.triplets import NSTripletDataset, synthetic_triplets
    data = cfg.data
    samples = []
    if data.source == 'synthetic':
        for i, seed in enumerate(data.seeds):
            kind = data.kinds[i % len(data.kinds)]
            try:
                samples += list(synthetic_triplets(1, data.frames_per_sequence, data.render_height,
                                                   data.render_width, cfg.baseline, seed, (kind,)))
            except ValueError as exc:   # baseline too wide for this scene's clearance
                logger.info('seed %d (%s): %s; using 0.12 m', seed, kind, exc)
                samples += list(synthetic_triplets(1, data.frames_per_sequence, data.render_height,
                                                   data.render_width, 0.12, seed, (kind,)))
    else:
        for path in data.paths:
            ds = NSTripletDataset(path, ao_threshold=cfg.ao_threshold, max_disparity=cfg.max_disparity)
            samples += [ds[i] for i in range(len(ds))]
    if not samples:
        raise DroDepthError('no training triplets: give data.seeds (synthetic) or data.paths (ns)')
    logger.info('training on %d triplets', len(samples))
    return TripletTensorDataset(samples, (cfg.crop_height, cfg.crop_width), cfg.seed)


def freeze_batch_norm(model: torch.nn.Module) -> None:
    """BatchNorm layers use their running statistics (RAFT-Stereo ``freeze_bn``)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()


def one_cycle(opt: torch.optim.Optimizer, steps: int, lr: float, start: int = 0,
              pct_start: float = 0.01) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear one-cycle (RAFT-Stereo: ``OneCycleLR(pct_start=0.01, anneal_strategy='linear')``, div 25,
    final div 1e4) as a resumable LambdaLR."""
    total = steps + 100
    up = max(1, int(pct_start * total))

    def factor(step: int) -> float:
        if step < up:
            return 1 / 25 + (1 - 1 / 25) * step / up
        return 1 + (1 / 25e4 - 1) * min(1.0, (step - up) / max(1, total - up))

    for group in opt.param_groups:
        group['initial_lr'] = lr
    return torch.optim.lr_scheduler.LambdaLR(opt, factor, last_epoch=start - 1)


def _build_model(cfg: StereoTrainConfig, out: Path, resume: bool, device: torch.device) -> RAFTStereo:
    if resume and (out / 'last.safetensors').is_file():
        return load_raft_stereo(out / 'last.safetensors', device=device)
    if cfg.init_checkpoint:
        return load_raft_stereo(cfg.init_checkpoint, device=device)
    return RAFTStereo(_VARIANTS[cfg.variant]).to(device)


def _save(model: RAFTStereo, path: Path, half: bool, extra: Dict[str, str]) -> Path:
    return save_state_dict(model.state_dict(), path, half=half,
                           metadata={'raft_stereo_config': model.cfg.to_dict(), **extra})


def train_stereo(cfg: StereoTrainConfig, out_dir: str | Path, resume: bool = False,
                 progress: bool = True) -> Path:
    """Run training; returns the path of ``final.safetensors``."""
    out, device = prepare_run(cfg, out_dir)
    model = _build_model(cfg, out, resume, device)
    model.train()
    freeze_batch_norm(model)
    opt, _, start = resumable_optimizer(model, cfg, out, resume)
    sched = one_cycle(opt, cfg.steps, cfg.lr, start)
    batches = batch_stream(build_triplet_dataset(cfg), cfg, start)
    loss_cfg = NSLossConfig(alpha_disp=cfg.alpha_disp, alpha_photo=cfg.alpha_photo)

    def losses_of(raw: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        b = {k: v.to(device) for k, v in raw.items()}
        flows = model(b['centre'], b['right'], iters=cfg.train_iters)
        target = torch.where(b['ao'] > cfg.ao_threshold, b['disparity'], torch.zeros_like(b['disparity']))
        loss, parts = ns_sequence_loss([-f for f in flows], b['left'] / 255, b['centre'] / 255,
                                       b['right'] / 255, target, b['ao'], loss_cfg)
        with torch.no_grad():
            valid = target > 0
            epe = (-flows[-1] - target).abs()[valid].mean() if bool(valid.any()) else loss * 0
        return {'loss': loss, 'disp': torch.tensor(parts['disp']), 'photo': torch.tensor(parts['photo']),
                'epe': epe}

    optimise(model, opt, sched, batches, losses_of, out, start=start, steps=cfg.steps,
             grad_clip=cfg.grad_clip, log_every=cfg.log_every, ckpt_every=cfg.ckpt_every,
             desc=f'train stereo {cfg.variant}', progress=progress,
             save_weights=lambda path, step: _save(model, path, False, {'step': str(step)}))
    final = _save(model.eval(), out / 'final.safetensors', cfg.save_half,
                  {'steps': str(cfg.steps), 'train_iters': str(cfg.train_iters),
                   'trained_on': cfg.data.source})
    plot_losses(out / 'losses.csv', out / 'losses.png')
    logger.info('final model: %s', final)
    return final
