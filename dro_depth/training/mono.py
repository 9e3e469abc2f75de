"""The Depth Anything recipe for a light relative-depth student (`dro-depth train` with ``model: mono``).

    dro-depth pseudo-label --teacher dro_depth/weights/metric_default.safetensors --bag logs/run1 --out pl/run1
    dro-depth train --config dro_depth/configs/mono_student.yaml --out runs/mono [--steps N] [--resume]

Each step: a labeled batch (``data``, e.g. synthetic scenes) with the affine-invariant loss on disparity
(median / mean-absolute-deviation normalisation) plus ``gradient_weight`` x MiDaS gradient matching; and,
when ``pseudo_labels`` folders are given, an unlabeled batch whose student input is strongly perturbed
(colour jitter, Gaussian blur, CutMix with probability ``cutmix_prob``, the loss split between the two
regions by area) against the teacher's labels of the clean images, with the top ``ignore_top`` fraction of
each sample's pixel losses ignored; optionally ``feature_weight`` x the feature-alignment loss to a frozen
ResNet-18 encoder (``feature_encoder``, a light metric or light relative model) with margin
``feature_margin``. Output folder as the other recipes, the model as :mod:`dro_depth.models.mono_light`.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List

import torch

from dro_depth.models.mono_light import LightRelativeDepth, load_light_relative, save_light_relative

from .loop import (DataConfig, RunConfig, batch_stream, load_sequences, optimise, plot_losses, prepare_run,
                   resumable_optimizer)
from .mono_losses import cutmix_loss, feature_alignment_loss, gradient_matching_loss, ssi_loss
from .mono_perturb import cutmix_boxes, strong_perturb

__all__ = ['MonoTrainConfig', 'train_mono', 'labeled_losses', 'pseudo_label_losses']

logger = logging.getLogger(__name__)


@dataclass
class MonoTrainConfig(RunConfig):
    model: str = 'mono'
    features: int = 64                    # DPT decoder width
    output_stride: int = 1
    height: int = 96                      # network input size (multiples of 32)
    width: int = 128
    steps: int = 1000
    batch_size: int = 4                   # labeled images per step
    pseudo_batch_size: int = 4            # pseudo-labeled images per step
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    gradient_weight: float = 0.5          # MiDaS gradient matching on labeled data
    pseudo_labels: List[str] = field(default_factory=list)   # folders written by `dro-depth pseudo-label`
    pseudo_weight: float = 1.0
    ignore_top: float = 0.1               # fraction of largest pixel losses ignored per pseudo-labeled sample
    cutmix_prob: float = 0.5
    colour_jitter: float = 0.4
    blur_prob: float = 0.5
    feature_encoder: str = ''             # frozen ResNet-18 of a light model file ('' = no feature alignment)
    feature_weight: float = 0.0
    feature_margin: float = 0.15          # pixels with cosine similarity above 1 - margin are not pulled
    augment: bool = True
    init_checkpoint: str = ''
    seed: int = 0
    device: str = 'auto'
    threads: int = 0
    log_every: int = 10
    ckpt_every: int = 100
    save_half: bool = False
    heldout_seeds: List[int] = field(default_factory=list)   # evaluated after training (synthetic, >= 1000)
    heldout_style: str = 'heldout'        # appearance of the held-out scenes (see dro_depth.data.domains)
    heldout_frames: int = 4
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> None:
        if self.model != 'mono':
            raise ValueError(f"model must be 'mono' for this recipe, got {self.model!r}")
        if self.height % 32 or self.width % 32 or self.height < 32 or self.width < 32:
            raise ValueError(f'height/width must be multiples of 32, got {self.height}x{self.width}')
        if self.output_stride not in (1, 2):
            raise ValueError(f'output_stride must be 1 or 2, got {self.output_stride}')
        if self.steps < 1 or self.batch_size < 1 or self.pseudo_batch_size < 1:
            raise ValueError('steps, batch_size and pseudo_batch_size must be >= 1')
        if not 0.0 <= self.ignore_top < 1.0 or not 0.0 <= self.cutmix_prob <= 1.0:
            raise ValueError('ignore_top must be in [0, 1) and cutmix_prob in [0, 1]')
        if not 0.0 <= self.feature_margin < 1.0:
            raise ValueError(f'feature_margin must be in [0, 1), got {self.feature_margin}')
        if self.feature_weight > 0 and not self.feature_encoder:
            raise ValueError('feature_weight > 0 needs feature_encoder (a light model file)')
        if self.data.source not in ('synthetic', 'bag', 'folder'):
            raise ValueError(f"data.source must be synthetic, bag or folder, got {self.data.source!r}")
        from dro_depth.data.domains import STYLES
        if self.heldout_style not in STYLES:
            raise ValueError(f'heldout_style must be one of {STYLES}, got {self.heldout_style!r}')


def _disparity(depth: torch.Tensor) -> tuple:
    """``(1 / depth, valid)`` of a ``(B, 1, H, W)`` depth batch (NaN / <= 1 mm invalid)."""
    valid = torch.isfinite(depth) & (depth > 1e-3)
    return torch.where(valid, 1.0 / torch.where(valid, depth, torch.ones_like(depth)), torch.zeros_like(depth)), valid


def labeled_losses(pred: torch.Tensor, depth: torch.Tensor, gradient_weight: float) -> Dict[str, torch.Tensor]:
    """Affine-invariant + gradient-matching loss of ``pred`` ``(B, H, W)`` against metric ``depth``."""
    disp, valid = _disparity(depth[:, 0])
    ssi = ssi_loss(pred, disp, valid)
    grad = gradient_matching_loss(pred, disp, valid)
    return {'ssi': ssi, 'grad': grad, 'labeled': ssi + gradient_weight * grad}


def pseudo_label_losses(pred: torch.Tensor, label_a: torch.Tensor, label_b: torch.Tensor, boxes: torch.Tensor,
                        ignore_top: float) -> torch.Tensor:
    """Trimmed affine-invariant loss of a (partly CutMix-ed) pseudo-labeled batch (labels ``(B, H, W)``)."""
    loss_fn = functools.partial(ssi_loss, trim=ignore_top)
    valid_a, valid_b = torch.isfinite(label_a), torch.isfinite(label_b)
    return cutmix_loss(loss_fn, pred, torch.nan_to_num(label_a), torch.nan_to_num(label_b), valid_a, valid_b,
                       boxes)


def _labeled_dataset(cfg: MonoTrainConfig):
    from dro_depth.data.mono_dataset import MonoDepthDataset

    seqs = load_sequences(cfg.data, need_ground_truth=False)
    missing = [i for i, s in enumerate(seqs) if s.depths is None]
    if missing:
        raise ValueError(f'labeled data needs depth ground truth; sequences {missing} have none '
                         '(set data.depth_topic for bags)')
    domains = None if cfg.data.source == 'synthetic' else ['indoor'] * len(seqs)
    logger.info('labeled: %d sequences, %d frames', len(seqs), sum(len(s) for s in seqs))
    return MonoDepthDataset(seqs, cfg.height, cfg.width, domains=domains, augment=cfg.augment, seed=cfg.seed)


def _batches(cfg: MonoTrainConfig, start: int) -> Iterator[Dict[str, torch.Tensor]]:
    labeled = batch_stream(_labeled_dataset(cfg), cfg, start)
    if not cfg.pseudo_labels:
        yield from labeled
        return
    from dro_depth.data.pseudo_labels import PseudoLabelDataset

    pl = PseudoLabelDataset(cfg.pseudo_labels, cfg.height, cfg.width, augment=cfg.augment, seed=cfg.seed + 1)
    logger.info('pseudo-labeled: %d images from %d folders', len(pl), len(cfg.pseudo_labels))
    unlabeled = batch_stream(pl, dataclasses.replace(cfg, batch_size=min(cfg.pseudo_batch_size, len(pl)),
                                                     seed=cfg.seed + 1), start)
    for a, b in zip(labeled, unlabeled):
        yield {**a, 'pl_image': b['image'], 'pl_label': b['label']}


def _frozen_encoder(path: str, device: torch.device):
    from dro_depth.models.checkpoints import load_weights_file
    from dro_depth.models.metric.light import LIGHT_FORMAT, load_light_zoedepth

    _, meta = load_weights_file(Path(path))
    model = load_light_zoedepth(path)[0] if meta.get('format') == LIGHT_FORMAT else load_light_relative(path)[0]
    enc = model.core.encoder.to(device).eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc


def _build_model(cfg: MonoTrainConfig, out: Path, resume: bool, device: torch.device) -> LightRelativeDepth:
    if resume and (out / 'last.safetensors').is_file():
        return load_light_relative(out / 'last.safetensors', device=device)[0]
    if cfg.init_checkpoint:
        model, meta = load_light_relative(cfg.init_checkpoint, device=device)
        if (meta['width'], meta['output_stride']) != (cfg.features, cfg.output_stride):
            raise ValueError(f'init_checkpoint has width {meta["width"]} / output stride {meta["output_stride"]}; '
                             f'the config asks for {cfg.features} / {cfg.output_stride}')
        model.img_size = (cfg.height, cfg.width)
        return model
    return LightRelativeDepth(cfg.features, cfg.output_stride, (cfg.height, cfg.width)).to(device)


def train_mono(cfg: MonoTrainConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Train the student; returns the path of the final safetensors file."""
    out, device = prepare_run(cfg, out_dir)
    model = _build_model(cfg, out, resume, device)
    model.train()
    frozen = _frozen_encoder(cfg.feature_encoder, device) if cfg.feature_weight > 0 else None
    opt, sched, start = resumable_optimizer(model, cfg, out, resume)
    batches = _batches(cfg, start)
    step = [start]

    def losses_of(raw: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step[0])
        step[0] += 1
        batch = {k: v.to(device) for k, v in raw.items()}
        losses = labeled_losses(model(batch['image']), batch['depth'], cfg.gradient_weight)
        loss = losses['labeled']
        if 'pl_image' in batch:
            x, label = batch['pl_image'], batch['pl_label'][:, 0]
            boxes = cutmix_boxes(x.shape[0], x.shape[-2], x.shape[-1], gen, cfg.cutmix_prob).to(device)
            x = strong_perturb(x, gen, cfg.colour_jitter, cfg.blur_prob)
            other = torch.roll(x, 1, 0)
            x = torch.where(boxes[:, None], other, x)
            feats: List[torch.Tensor] = []
            pred = model(x, feats)
            losses['pseudo'] = pseudo_label_losses(pred, label, torch.roll(label, 1, 0), boxes, cfg.ignore_top)
            loss = loss + cfg.pseudo_weight * losses['pseudo']
            if frozen is not None:
                with torch.no_grad():
                    target = frozen((x - 0.5) / 0.5)[-1]
                losses['feature'] = feature_alignment_loss(feats[-1], target, cfg.feature_margin)
                loss = loss + cfg.feature_weight * losses['feature']
        losses['loss'] = loss
        return losses

    optimise(model, opt, sched, batches, losses_of, out, start=start, steps=cfg.steps, grad_clip=cfg.grad_clip,
             log_every=cfg.log_every, ckpt_every=cfg.ckpt_every, desc='train mono', progress=progress,
             samples_per_step=cfg.batch_size + (cfg.pseudo_batch_size if cfg.pseudo_labels else 0),
             save_weights=lambda path, s: save_light_relative(model, path, metadata={'step': s}))
    model.eval()
    final = save_light_relative(model, out / 'final.safetensors', half=cfg.save_half,
                                metadata={'steps': cfg.steps, 'pseudo_labels': len(cfg.pseudo_labels)})
    plot_losses(out / 'losses.csv', out / 'losses.png')
    if cfg.heldout_seeds:
        from dro_depth.evaluation.mono_heldout import evaluate_relative, heldout_sequences

        seqs = heldout_sequences(cfg.heldout_seeds, cfg.heldout_style, cfg.heldout_frames,
                                 cfg.data.render_height, cfg.data.render_width, cfg.data.kinds)
        student = load_light_relative(final, device=device)[0]
        report = evaluate_relative(lambda img: student.infer(img)[:, 0], seqs, device=device)
        with open(out / 'heldout.json', 'w') as f:
            json.dump(report, f, indent=2)
        logger.info('held-out (%s): %s', cfg.heldout_style, json.dumps(report['all']))
    logger.info('final mono student: %s', final)
    return final
