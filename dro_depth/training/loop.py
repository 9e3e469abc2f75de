"""The training loop and run set-up shared by every recipe (DRO, metric, ...).

:class:`RunConfig` (YAML round trip of a recipe's config dataclass with a nested :class:`DataConfig`),
:func:`prepare_run` (output folder, threads, seed, device), :func:`load_sequences` (synthetic scenes, bags or
folders), :func:`resumable_optimizer` (AdamW + warm-up/cosine schedule, resumable), :func:`batch_stream` and
:func:`optimise` (the loop itself: clipping, non-finite guard, tqdm, ``losses.csv``/``losses.png``,
checkpoints).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch
import yaml
from safetensors.torch import load_file, save_file

from dro_depth.device import resolve_device

__all__ = ['DataConfig', 'RunConfig', 'batch_stream', 'load_sequences', 'optimise', 'plot_losses',
           'prepare_run', 'resumable_optimizer', 'warmup_cosine']

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
    cache_dir: str = ''                   # synthetic: read/write rendered sequences here (data.sample_cache)


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


def load_sequences(data: DataConfig, need_ground_truth: bool) -> list:
    """The training sequences described by ``data`` (synthetic scenes, ROS 2 bags or folders)."""
    if data.source == 'synthetic' and data.cache_dir:
        from dro_depth.data.sample_cache import cached_sequences

        seqs = cached_sequences(data.cache_dir, data.kinds, data.seeds, data.frames_per_sequence,
                                data.render_height, data.render_width)
    elif data.source == 'synthetic':
        from dro_depth.data.synthetic import generate_sequence

        seqs = [generate_sequence(kind, seed=seed, n_frames=data.frames_per_sequence,
                                  height=data.render_height, width=data.render_width)
                for seed in data.seeds for kind in data.kinds]
    elif data.source == 'bag':
        from dro_depth.data.bags import read_bag_sequence

        seqs = [read_bag_sequence(p, image_topic=data.image_topic, camera_info_topic=data.camera_info_topic,
                                  depth_topic=data.depth_topic or None, pose_topic=data.pose_topic or None)
                for p in data.paths]
    else:
        from dro_depth.data.folders import read_folder_sequence

        seqs = [read_folder_sequence(p) for p in data.paths]
    if not seqs:
        raise ValueError('no training sequences: give data.seeds (synthetic) or data.paths (bag, folder)')
    if need_ground_truth:
        missing = [i for i, s in enumerate(seqs) if s.depths is None or s.poses is None]
        if missing:
            raise ValueError(f'supervised training needs depth and pose ground truth; sequences {missing} '
                             "have none (set data.depth_topic/pose_topic, or use mode 'self_supervised')")
    return seqs


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


def plot_losses(csv_path: Path, png_path: Path) -> None:
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
             save_weights: Callable[[Path, int], Any], desc: str = 'train', progress: bool = True,
             is_writer: bool = True, finite: Callable[[torch.Tensor], bool] | None = None,
             samples_per_step: int = 0, after_backward: Callable[[], Any] | None = None) -> None:
    """The training loop shared by DRO and the metric model.

    Steps ``start .. steps-1``: ``losses_of(next(batches))`` (a dict with ``'loss'``), a non-finite loss skips
    the batch, gradient clipping, optimizer and scheduler step; a tqdm bar with smoothed losses;
    ``out/losses.csv`` every ``log_every`` steps (appended to when resuming); every ``ckpt_every`` steps
    and at the end, ``save_weights(out / 'last.safetensors', step)``, the optimizer state and the plot.
    Data-parallel ranks (:mod:`dro_depth.training.distributed`) pass ``is_writer`` (only rank 0 writes
    files and shows the bar), ``finite`` (a loss finite on every rank, so all skip a bad batch together) and
    ``after_backward`` (the gradient all-reduce).
    ``samples_per_step`` (all ranks together) adds ``samples/s`` to the bar.
    """
    csv_path = out / 'losses.csv'
    new_csv = start == 0 or not csv_path.is_file()
    csv_file = open(csv_path if is_writer else os.devnull, 'w' if new_csv else 'a', newline='')
    finite = finite or (lambda value: bool(torch.isfinite(value)))
    writer: Optional[csv.DictWriter] = None

    from tqdm import tqdm
    bar = tqdm(range(start, steps), initial=start, total=steps, disable=not (progress and is_writer),
               desc=desc, unit='step',
               dynamic_ncols=True)
    t0 = time.time()
    ema: Dict[str, float] = {}
    try:
        for step in bar:
            losses = losses_of(next(batches))
            loss = losses['loss']
            opt.zero_grad(set_to_none=True)
            if not finite(loss):
                logger.warning('step %d: non-finite loss, batch skipped', step)
                continue
            loss.backward()
            if after_backward is not None:
                after_backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            sched.step()
            for k, v in losses.items():
                v = float(v.detach())
                ema[k] = v if k not in ema else 0.9 * ema[k] + 0.1 * v
            rate = samples_per_step * (step + 1 - start) / max(time.time() - t0, 1e-9)
            bar.set_postfix({**{k: f'{v:.4f}' for k, v in ema.items()},
                             **({'samples/s': f'{rate:.2f}'} if samples_per_step else {})})
            if (step + 1) % log_every == 0 or step + 1 == steps:
                row = {'step': step + 1, 'seconds': round(time.time() - t0, 1),
                       'lr': sched.get_last_lr()[0], **{k: round(v, 6) for k, v in ema.items()}}
                if writer is None:
                    writer = csv.DictWriter(csv_file, fieldnames=list(row))
                    if new_csv:
                        writer.writeheader()
                writer.writerow(row)
                csv_file.flush()
            if is_writer and ((step + 1) % ckpt_every == 0 or step + 1 == steps):
                save_weights(out / 'last.safetensors', step + 1)
                _save_optimizer(opt, step + 1, out / 'last.optim.safetensors')
                plot_losses(csv_path, out / 'losses.png')
    finally:
        csv_file.close()
        bar.close()
