"""`dro-depth train`: train DRO, supervised or self-supervised, on synthetic scenes, ROS 2 bags or folders.

    dro-depth train --config dro_depth/configs/default_model.yaml --out runs/default [--steps N] [--resume]
    dro-depth train --config dro_depth/configs/metric_default.yaml --out runs/metric   # light metric model

A config with ``model: metric`` trains the light metric-depth model instead (:mod:`dro_depth.train_metric`).

Everything about a run is in its YAML config (see :class:`TrainConfig`); command-line flags override a few
fields. The output folder holds:

    config.yaml                 the resolved config
    last.safetensors            model weights (resumable; ``load_dro`` reads it)
    last.optim.safetensors      optimizer state + step (for --resume)
    losses.csv  losses.png      loss curves
    final.safetensors           the finished model (fp16 storage when ``save_half``)
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch
import yaml
from safetensors.torch import load_file, save_file

from .estimator import resolve_device
from .losses import self_supervised_loss, supervised_loss
from .models.dro import build_dro, load_dro, save_dro

__all__ = ['DataConfig', 'RunConfig', 'TrainConfig', 'train', 'optimise', 'prepare_run', 'resumable_optimizer',
           'batch_stream', 'warmup_cosine', 'main']

logger = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Where training samples come from.

    source: 'synthetic' (generated in memory from ``kinds`` x ``seeds``), 'bag' (``paths`` of ROS 2 bags with
    ``image_topic``/``camera_info_topic`` and optional ``depth_topic``/``pose_topic``) or 'folder'.
    """

    source: str = 'synthetic'
    kinds: List[str] = field(default_factory=lambda: ['indoor', 'outdoor'])
    seeds: List[int] = field(default_factory=lambda: list(range(100, 116)))
    frames_per_sequence: int = 60
    render_height: int = 240
    render_width: int = 320
    paths: List[str] = field(default_factory=list)
    image_topic: str = '/camera/image'
    camera_info_topic: str = '/camera/camera_info'
    depth_topic: str = ''
    pose_topic: str = ''
    ref_offsets: List[int] = field(default_factory=lambda: [-2, 2])
    domain: str = ''                      # metric model: 'indoor'/'outdoor' label of bag/folder data


class RunConfig:
    """YAML round trip of a training config dataclass with a nested ``data`` (:class:`DataConfig`)."""

    @classmethod
    def from_dict(cls, d: Dict[str, Any]):
        d = dict(d)
        data = DataConfig(**d.pop('data', {}))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f'unknown training config keys: {sorted(unknown)}')
        return cls(data=data, **d)

    @classmethod
    def from_yaml(cls, path: str | Path):
        with open(path) as f:
            return cls.from_dict(yaml.safe_load(f) or {})

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        raise NotImplementedError


def prepare_run(cfg: RunConfig, out_dir: str | Path) -> tuple:
    """Validate ``cfg``, create ``out_dir`` with ``config.yaml``, set threads and seed: ``(out, device)``."""
    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    with open(out / 'config.yaml', 'w') as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
    return out, device


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
    save_half: bool = True
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> None:
        if self.mode not in ('supervised', 'self_supervised'):
            raise ValueError(f"mode must be 'supervised' or 'self_supervised', got {self.mode!r}")
        if self.height % 16 or self.width % 16:
            raise ValueError(f'height/width must be multiples of 16, got {self.height}x{self.width}')
        if self.steps < 1 or self.batch_size < 1 or self.iterations < 0:
            raise ValueError('steps and batch_size must be >= 1 and iterations >= 0')
        if self.data.source not in ('synthetic', 'bag', 'folder'):
            raise ValueError(f"data.source must be synthetic, bag or folder, got {self.data.source!r}")



def load_sequences(data: DataConfig, need_ground_truth: bool) -> list:
    """The training sequences described by ``data`` (synthetic scenes, ROS 2 bags or folders)."""
    if data.source == 'synthetic':
        from .data.synthetic import generate_sequence

        seqs = [generate_sequence(kind, seed=seed, n_frames=data.frames_per_sequence,
                                  height=data.render_height, width=data.render_width)
                for seed in data.seeds for kind in data.kinds]
    elif data.source == 'bag':
        from .data.bags import read_bag_sequence

        seqs = [read_bag_sequence(p, image_topic=data.image_topic, camera_info_topic=data.camera_info_topic,
                                  depth_topic=data.depth_topic or None, pose_topic=data.pose_topic or None)
                for p in data.paths]
    else:
        from .data.folders import read_folder_sequence

        seqs = [read_folder_sequence(p) for p in data.paths]
    if not seqs:
        raise ValueError('no training sequences: give data.seeds (synthetic) or data.paths (bag, folder)')
    if need_ground_truth:
        missing = [i for i, s in enumerate(seqs) if s.depths is None or s.poses is None]
        if missing:
            raise ValueError(f'supervised training needs depth and pose ground truth; sequences {missing} '
                             "have none (set data.depth_topic/pose_topic, or use mode 'self_supervised')")
    return seqs


def build_dataset(cfg: TrainConfig):
    """The torch Dataset of (target, references) samples described by ``cfg.data``."""
    from .data.dataset import SequenceDataset

    seqs = load_sequences(cfg.data, need_ground_truth=cfg.mode == 'supervised')
    logger.info('training on %d sequences, %d frames', len(seqs), sum(len(s) for s in seqs))
    return SequenceDataset(seqs, offsets=cfg.data.ref_offsets, height=cfg.height, width=cfg.width,
                           skip_static=cfg.mode == 'supervised')


def _infinite(loader) -> Iterator[Dict[str, torch.Tensor]]:
    while True:
        yield from loader


def _save_optimizer(opt: torch.optim.Optimizer, step: int, path: Path) -> None:
    tensors: Dict[str, torch.Tensor] = {}
    scalars: Dict[str, Any] = {'step': step}
    for pid, state in opt.state_dict()['state'].items():
        for k, v in state.items():
            if torch.is_tensor(v):
                tensors[f'{pid}.{k}'] = v.contiguous()
            else:
                scalars[f'{pid}.{k}'] = v
    save_file(tensors, str(path), metadata={'scalars': json.dumps(scalars)})


def _load_optimizer(opt: torch.optim.Optimizer, path: Path) -> int:
    from safetensors import safe_open

    tensors = load_file(str(path))
    with safe_open(str(path), 'pt') as f:
        scalars = json.loads(f.metadata()['scalars'])
    sd = opt.state_dict()
    state: Dict[int, Dict[str, Any]] = {}
    for key, v in list(tensors.items()) + [(k, v) for k, v in scalars.items() if k != 'step']:
        pid, name = key.split('.', 1)
        state.setdefault(int(pid), {})[name] = v
    sd['state'] = state
    opt.load_state_dict(sd)
    return int(scalars['step'])


def warmup_cosine(opt: torch.optim.Optimizer, steps: int, lr: float,
                  start: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first 5 % of ``steps``, then cosine decay to 5 % of ``lr``; resumes at
    ``start``."""
    warmup = max(1, steps // 20)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))

    for group in opt.param_groups:
        group.setdefault('initial_lr', lr)
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_factor, last_epoch=start - 1)


def _plot_losses(csv_path: Path, png_path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    keys = [k for k in rows[0] if k not in ('step', 'seconds', 'lr')]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
    steps = [int(r['step']) for r in rows]
    for ax, k in zip(axes[0], keys):
        ax.plot(steps, [float(r[k]) for r in rows])
        ax.set_title(k)
        ax.set_xlabel('step')
        ax.set_yscale('log' if all(float(r[k]) > 0 for r in rows) else 'linear')
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def resumable_optimizer(model: torch.nn.Module, cfg: RunConfig, out: Path, resume: bool) -> tuple:
    """AdamW over the trainable parameters, its state and step from ``out`` when resuming, and the
    warm-up + cosine schedule: ``(optimizer, scheduler, start_step)``."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    start = 0
    if resume and (out / 'last.optim.safetensors').is_file():
        start = _load_optimizer(opt, out / 'last.optim.safetensors')
        logger.info('resumed at step %d from %s', start, out)
    return opt, warmup_cosine(opt, cfg.steps, cfg.lr, start), start


def batch_stream(dataset, cfg: RunConfig, start: int) -> Iterator[Dict[str, torch.Tensor]]:
    """Endless shuffled batches of ``cfg.batch_size`` (seeded by ``cfg.seed + start``, so a resumed run
    does not replay the first batches)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                                         num_workers=0,
                                         generator=torch.Generator().manual_seed(cfg.seed + start))
    return _infinite(loader)


def optimise(model: torch.nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LambdaLR,
             batches: Iterator[Dict[str, torch.Tensor]],
             losses_of: Callable[[Dict[str, torch.Tensor]], Dict[str, torch.Tensor]], out: Path, *, start: int,
             steps: int, grad_clip: float, log_every: int, ckpt_every: int,
             save_weights: Callable[[Path, int], Any], desc: str = 'train', progress: bool = True) -> None:
    """The training loop shared by DRO and the metric model.

    Steps ``start .. steps-1``: ``losses_of(next(batches))`` (a dict with ``'loss'``), a non-finite loss skips
    the batch, gradient clipping, optimizer and scheduler step; a tqdm bar with smoothed losses;
    ``out/losses.csv`` every ``log_every`` steps (appended to when resuming); every ``ckpt_every`` steps
    and at the end, ``save_weights(out / 'last.safetensors', step)``, the optimizer state and the plot.
    """
    csv_path = out / 'losses.csv'
    new_csv = start == 0 or not csv_path.is_file()
    csv_file = open(csv_path, 'w' if new_csv else 'a', newline='')
    writer: Optional[csv.DictWriter] = None

    from tqdm import tqdm
    bar = tqdm(range(start, steps), initial=start, total=steps, disable=not progress, desc=desc, unit='step',
               dynamic_ncols=True)
    t0 = time.time()
    ema: Dict[str, float] = {}
    try:
        for step in bar:
            losses = losses_of(next(batches))
            loss = losses['loss']
            opt.zero_grad(set_to_none=True)
            if not torch.isfinite(loss):
                logger.warning('step %d: non-finite loss, batch skipped', step)
                continue
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            sched.step()
            for k, v in losses.items():
                v = float(v.detach())
                ema[k] = v if k not in ema else 0.9 * ema[k] + 0.1 * v
            bar.set_postfix({k: f'{v:.4f}' for k, v in ema.items()})
            if (step + 1) % log_every == 0 or step + 1 == steps:
                row = {'step': step + 1, 'seconds': round(time.time() - t0, 1),
                       'lr': sched.get_last_lr()[0], **{k: round(v, 6) for k, v in ema.items()}}
                if writer is None:
                    writer = csv.DictWriter(csv_file, fieldnames=list(row))
                    if new_csv:
                        writer.writeheader()
                writer.writerow(row)
                csv_file.flush()
            if (step + 1) % ckpt_every == 0 or step + 1 == steps:
                save_weights(out / 'last.safetensors', step + 1)
                _save_optimizer(opt, step + 1, out / 'last.optim.safetensors')
                _plot_losses(csv_path, out / 'losses.png')
    finally:
        csv_file.close()
        bar.close()


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Run training; returns the path of the final safetensors model."""
    out, device = prepare_run(cfg, out_dir)

    if resume and (out / 'last.safetensors').is_file():
        model = load_dro(str(out / 'last.safetensors'), device=device, dtype=torch.float32)
    elif cfg.init_checkpoint:
        model = load_dro(cfg.init_checkpoint, device=device, dtype=torch.float32)
    else:
        model = build_dro(hidden_dim=cfg.hidden).to(device)
    model.train()
    opt, sched, start = resumable_optimizer(model, cfg, out, resume)
    batches = batch_stream(build_dataset(cfg), cfg, start)
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
             save_weights=lambda path, step: save_dro(model, path, metadata={'step': str(step)}))
    final = out / 'final.safetensors'
    save_dro(model.eval(), final, half=cfg.save_half,
             metadata={'height': str(cfg.height), 'width': str(cfg.width), 'mode': cfg.mode,
                       'steps': str(cfg.steps), 'iterations': str(cfg.iterations)})
    _plot_losses(out / 'losses.csv', out / 'losses.png')
    logger.info('final model: %s', final)
    return final


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='dro-depth train', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True, help='training YAML (see dro_depth/configs/)')
    parser.add_argument('--out', required=True, help='output folder (created; reused with --resume)')
    parser.add_argument('--resume', action='store_true', help='continue from OUT/last.*')
    parser.add_argument('--steps', type=int, help='override steps')
    parser.add_argument('--device', help='override device (auto, cpu, cuda, cuda:1, ...)')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    with open(args.config) as f:
        raw = yaml.safe_load(f) or {}
    if raw.get('model', 'dro') == 'metric':
        from .train_metric import MetricTrainConfig, train_metric
        cfg, run = MetricTrainConfig.from_dict(raw), train_metric
    else:
        raw.pop('model', None)
        cfg, run = TrainConfig.from_dict(raw), train
    if args.steps:
        cfg.steps = args.steps
    if args.device:
        cfg.device = args.device
    final = run(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    print(f'final model: {final}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
