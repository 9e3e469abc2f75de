"""One prepared command for the few minutes a GPU machine may be lent: render, calibrate, train, shard.

    python -m dro_depth.training.gpu_recipe --out OUT --minutes 7 \
        [--init dro_depth/weights/dro_default.safetensors]
    torchrun --standalone --nproc-per-node 8 -m dro_depth.training.gpu_recipe --out OUT --minutes 7

1. renders the synthetic training sequences (seeds ``--seeds`` x indoor/outdoor, never the held-out
   seeds >= 1000) in a process pool on all CPU cores (a 40-frame 192x256 sequence takes ~1 s per core);
2. measures seconds per step on this machine with ``--calib-steps`` throw-away steps;
3. trains :func:`dro_depth.training.dro.train` for as many steps as fit in ``--minutes`` (minus
   rendering and calibration), warm-up + cosine over exactly that many steps, checkpoints every
   ``--ckpt-minutes`` (resumable with ``--resume``);
4. writes the final fp16 weights as shards of at most ``--shard-mb`` MB (:mod:`.shards`).

``--cache DIR`` keeps the rendered sequences on disk (:mod:`dro_depth.data.sample_cache`, keyed by the render
parameters and the renderer's source): a second call (``--resume``, or a longer budget on the same warm
machine) reads them instead of rendering, and a folder rendered elsewhere with
``python -m dro_depth.data.sample_cache`` can be carried along (only scenes missing from it are rendered).

Rehearse on CPU with a tiny budget: ``--device cpu --minutes 1 --height 32 --width 48 --seeds 100 101``.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import List, Optional

import torch

from dro_depth.data.dataset import SequenceDataset
from dro_depth.data.sample_cache import cached_sequences
from dro_depth.data.synthetic import generate_sequence

from .dro import TrainConfig, train
from .loop import DataConfig
from .shards import write_shards

__all__ = ['render_parallel', 'recipe_config', 'main']

logger = logging.getLogger(__name__)

HELD_OUT_FIRST_SEED = 1000


def _render(job: tuple) -> object:
    kind, seed, frames, height, width = job
    return generate_sequence(kind, seed=seed, n_frames=frames, height=height, width=width)


def _render_jobs(jobs: list, workers: int) -> list:
    if workers <= 1:
        return [_render(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_render, jobs, chunksize=max(1, len(jobs) // (4 * workers))))


def render_parallel(data: DataConfig, workers: int, cache: str = '') -> list:
    """The training sequences of ``data`` (synthetic), rendered in ``workers`` processes; with ``cache``,
    read from / written to that on-disk sample cache."""
    bad = [s for s in data.seeds if s >= HELD_OUT_FIRST_SEED]
    if bad:
        raise ValueError(f'seeds {bad} are held-out evaluation seeds (>= {HELD_OUT_FIRST_SEED}); '
                         'train on lower ones')
    if cache:
        return cached_sequences(cache, data.kinds, data.seeds, data.frames_per_sequence, data.render_height,
                                data.render_width, render=lambda jobs: _render_jobs(jobs, workers))
    jobs = [(k, s, data.frames_per_sequence, data.render_height, data.render_width)
            for s in data.seeds for k in data.kinds]
    return _render_jobs(jobs, workers)


def recipe_config(args: argparse.Namespace, steps: int) -> TrainConfig:
    """The training config of this recipe (12 iterations, the bundled model's resolution by default)."""
    data = DataConfig(source='synthetic', kinds=['indoor', 'outdoor'], seeds=list(args.seeds),
                      frames_per_sequence=args.frames, render_height=2 * args.height,
                      render_width=2 * args.width, ref_offsets=[-1, -3])
    ckpt_every = max(1, steps // max(1, int(args.minutes / args.ckpt_minutes)))
    return TrainConfig(mode='supervised', steps=steps, batch_size=args.batch_size, lr=args.lr,
                       iterations=args.iterations, gamma=0.85, height=args.height, width=args.width,
                       hidden=args.hidden, init_checkpoint=args.init or '', device=args.device,
                       threads=args.threads, log_every=max(1, min(50, steps // 20)), ckpt_every=ckpt_every,
                       bf16=args.bf16, data=data)


def _seconds_per_step(args: argparse.Namespace, dataset, out: Path) -> float:
    """Steady-state seconds per step from a throw-away run (its first step, with set-up, excluded)."""
    import csv
    cfg = recipe_config(args, max(3, args.calib_steps))
    cfg.log_every = 1
    train(cfg, out / 'calibration', progress=False, dataset=dataset)
    with open(out / 'calibration' / 'losses.csv') as f:
        seconds = [float(r['seconds']) for r in csv.DictReader(f)]
    return (seconds[-1] - seconds[0]) / (len(seconds) - 1)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m dro_depth.training.gpu_recipe', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', required=True)
    p.add_argument('--minutes', type=float, default=7.0, help='total wall-clock budget of this command')
    # shards: MB = 10^6 bytes
    p.add_argument('--ckpt-minutes', type=float, default=2.0)
    p.add_argument('--resume', action='store_true')
    p.add_argument('--init', default='', help='start from these weights (e.g. the bundled model)')
    p.add_argument('--device', default='auto')
    p.add_argument('--seeds', nargs='+', type=int, default=list(range(100, 400)))
    p.add_argument('--frames', type=int, default=40)
    p.add_argument('--height', type=int, default=96)
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--lr', type=float, default=3e-4)
    p.add_argument('--iterations', type=int, default=12)
    p.add_argument('--hidden', type=int, default=128, choices=(64, 128))
    p.add_argument('--bf16', action='store_true')
    p.add_argument('--threads', type=int, default=0)
    p.add_argument('--calib-steps', type=int, default=5)
    p.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    p.add_argument('--shard-mb', type=float, default=16.0)
    p.add_argument('--cache', default='', help='on-disk sample cache folder (read, and filled where missing)')
    return p


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    args = _parser().parse_args(argv)
    t_start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    probe = recipe_config(args, 1)
    seqs = render_parallel(probe.data, args.workers, args.cache)
    dataset = SequenceDataset(seqs, offsets=probe.data.ref_offsets, height=args.height, width=args.width,
                              skip_static=True)
    print(f'rendered {len(seqs)} sequences, {len(dataset)} samples in {time.time() - t_start:.1f} s')
    if args.resume and (out / 'run' / 'config.yaml').is_file():
        import yaml
        steps = int(yaml.safe_load((out / 'run' / 'config.yaml').read_text())['steps'])
    else:
        spp = _seconds_per_step(args, dataset, out)
        left = args.minutes * 60 - (time.time() - t_start) - 30.0      # 30 s for saving and sharding
        steps = max(1, int(left / spp))
        print(f'{spp:.3f} s/step ({args.batch_size / spp:.1f} samples/s per process): {steps} steps fit')
    final = train(recipe_config(args, steps), out / 'run', resume=args.resume, dataset=dataset)
    if int(os.environ.get('RANK', '0')) == 0:
        shards = write_shards(final, out / 'weights', max_bytes=int(args.shard_mb * 1e6))
        largest = max(s.stat().st_size for s in shards) / 1e6
        print(f'{len(shards)} weight shards in {out / "weights"} (max {largest:.1f} MB); '
              f'total {time.time() - t_start:.0f} s')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
