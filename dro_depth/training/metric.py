"""Training the light metric-depth model (ResNet-18 + small DPT decoder + ZoeDepth metric-bins head).

    dro-depth train --config dro_depth/configs/metric_default.yaml --out runs/metric [--steps N] [--resume]

Loss: ZoeDepth's scale-invariant log loss (``10 sqrt(Var g + 0.15 mean(g)^2)``, g = log pred - log gt) on the
head of the image's domain (teacher forcing), plus, for the two-head ``NK`` variant, a cross-entropy that
teaches the router the indoor/outdoor label. The output folder has the same layout as DRO training
(``config.yaml``, ``last.safetensors``, ``last.optim.safetensors``, ``losses.csv/png``,
``final.safetensors``) plus ``heldout.json`` when ``heldout_seeds`` are given.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import torch
import torch.nn.functional as F

from dro_depth.data.mono_dataset import DOMAIN_LABELS, HEAD_MAX_DEPTH
from dro_depth.models.metric.light import build_light_zoedepth, load_light_zoedepth, save_light_zoedepth

from .losses import silog_loss
from .loop import (DataConfig, RunConfig, batch_stream, load_sequences, optimise, plot_losses, prepare_run,
                   resumable_optimizer)

__all__ = ['MetricTrainConfig', 'train_metric']

logger = logging.getLogger(__name__)


@dataclass
class MetricTrainConfig(RunConfig):
    model: str = 'metric'
    variant: str = 'NK'                   # 'N' (one head) or 'NK' (indoor + outdoor heads and router)
    features: int = 64                    # decoder / head width (256 in the released models)
    output_stride: int = 2                # 1: head at network resolution; 2: half (about 2x faster)
    height: int = 192                     # network input size
    width: int = 256
    steps: int = 2000
    batch_size: int = 4
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    silog_lambda: float = 0.85
    router_weight: float = 0.5
    augment: bool = True
    init_checkpoint: str = ''             # fine-tune from this light model (e.g. on a robot's logs)
    seed: int = 0
    device: str = 'auto'
    threads: int = 0
    log_every: int = 10
    ckpt_every: int = 100
    save_half: bool = True
    heldout_seeds: List[int] = field(default_factory=list)    # synthetic seeds evaluated after training
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> None:
        if self.model != 'metric':
            raise ValueError(f"model must be 'metric' for metric training, got {self.model!r}")
        if self.variant not in ('N', 'NK'):
            raise ValueError(f"variant must be 'N' or 'NK', got {self.variant!r}")
        if self.height % 32 or self.width % 32:
            raise ValueError(f'height/width must be multiples of 32, got {self.height}x{self.width}')
        if self.output_stride not in (1, 2):
            raise ValueError(f'output_stride must be 1 or 2, got {self.output_stride}')
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError('steps and batch_size must be >= 1')
        if self.data.source not in ('synthetic', 'bag', 'folder'):
            raise ValueError(f"data.source must be synthetic, bag or folder, got {self.data.source!r}")
        if self.data.source != 'synthetic' and self.data.domain not in ('indoor', 'outdoor'):
            raise ValueError("bag/folder data needs data.domain: indoor or outdoor")



def build_metric_dataset(cfg: MetricTrainConfig):
    from dro_depth.data.mono_dataset import MonoDepthDataset

    seqs = load_sequences(cfg.data, need_ground_truth=False)
    missing = [i for i, s in enumerate(seqs) if s.depths is None]
    if missing:
        raise ValueError(f'metric training needs depth ground truth; sequences {missing} have none '
                         '(set data.depth_topic for bags)')
    domains = None if cfg.data.source == 'synthetic' else [cfg.data.domain] * len(seqs)
    logger.info('metric training on %d sequences, %d frames', len(seqs), sum(len(s) for s in seqs))
    return MonoDepthDataset(seqs, cfg.height, cfg.width, domains=domains, augment=cfg.augment, seed=cfg.seed)


def metric_losses(out, depth: torch.Tensor, domain: torch.Tensor, silog_lambda: float = 0.85,
                  router_weight: float = 0.5) -> Dict[str, torch.Tensor]:
    """SILog on the valid pixels of each image's head range, plus the router cross-entropy (NK).

    Args:
        out: :class:`MetricDepthOutput` of a forward pass with ``domain`` forced to the labels.
        depth: ``(B, 1, H, W)`` metres, NaN invalid. domain: ``(B,)`` 0 indoor / 1 outdoor.
    """
    ranges = [HEAD_MAX_DEPTH[d] for d in sorted(DOMAIN_LABELS, key=DOMAIN_LABELS.get)]
    max_depth = torch.tensor(ranges, device=depth.device)[domain].view(-1, 1, 1, 1)
    valid = torch.isfinite(depth) & (depth > 1e-3) & (depth <= max_depth)
    gt = torch.where(valid, depth, torch.ones_like(depth))
    silog = silog_loss(out.metric_depth.float(), gt, lam=silog_lambda, valid=valid)
    losses = {'silog': silog}
    loss = silog
    if out.domain_logits is not None:
        ce = F.cross_entropy(out.domain_logits.float(), domain)
        losses['router_ce'] = ce
        loss = loss + router_weight * ce
    losses['loss'] = loss
    return losses


def train_metric(cfg: MetricTrainConfig, out_dir: str | Path, resume: bool = False,
                 progress: bool = True) -> Path:
    """Train the light metric model; returns the path of the final safetensors file."""
    out, device = prepare_run(cfg, out_dir)

    if resume and (out / 'last.safetensors').is_file():
        model, _ = load_light_zoedepth(out / 'last.safetensors', device=device)
    elif cfg.init_checkpoint:
        model, meta = load_light_zoedepth(cfg.init_checkpoint, device=device,
                                          img_size=(cfg.height, cfg.width))
        if (meta['variant'], meta['width'], meta['output_stride']) != (cfg.variant, cfg.features,
                                                                       cfg.output_stride):
            raise ValueError(f'init_checkpoint is a {meta["variant"]} model of width {meta["width"]} and '
                             f'output stride {meta["output_stride"]}; the config asks for {cfg.variant}, '
                             f'{cfg.features}, {cfg.output_stride}')
    else:
        model = build_light_zoedepth(cfg.variant, width=cfg.features, img_size=(cfg.height, cfg.width),
                                     output_stride=cfg.output_stride).to(device)
    model.train()
    opt, sched, start = resumable_optimizer(model, cfg, out, resume)
    batches = batch_stream(build_metric_dataset(cfg), cfg, start)
    names = ['indoor', 'outdoor']

    def losses_of(raw: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        batch = {k: v.to(device) for k, v in raw.items()}
        forced = [names[i] for i in batch['domain'].tolist()]         # each image's own head
        out_m = model(batch['image'], forced, resize=False)
        return metric_losses(out_m, batch['depth'], batch['domain'], cfg.silog_lambda, cfg.router_weight)

    optimise(model, opt, sched, batches, losses_of, out, start=start, steps=cfg.steps, grad_clip=cfg.grad_clip,
             log_every=cfg.log_every, ckpt_every=cfg.ckpt_every, desc='train metric', progress=progress,
             save_weights=lambda path, step: save_light_zoedepth(model, path, metadata={'step': step}))
    model.eval()
    final = save_light_zoedepth(model, out / 'final.safetensors', half=cfg.save_half,
                                metadata={'steps': cfg.steps, 'trained_on': _describe_data(cfg.data)})
    plot_losses(out / 'losses.csv', out / 'losses.png')
    if cfg.heldout_seeds:
        from dro_depth.evaluation.metric_heldout import evaluate_metric_model, heldout_sequences

        model, _ = load_light_zoedepth(final, device=device)
        report = evaluate_metric_model(model, heldout_sequences(cfg.heldout_seeds, cfg.data))
        with open(out / 'heldout.json', 'w') as f:
            json.dump(report, f, indent=2)
        logger.info('held-out: %s', json.dumps(report['all']))
    logger.info('final metric model: %s', final)
    return final


def _describe_data(data: DataConfig) -> str:
    if data.source == 'synthetic':
        return f'synthetic {"+".join(data.kinds)} seeds {min(data.seeds)}-{max(data.seeds)}'
    return f'{data.source}: {len(data.paths)} paths ({data.domain})'
