"""Seconds per DRO training step with the memory-layout and compile options (issue 14).

    python -m dro_depth.bench.train_step [--variants nchw eager channels_last compile_modules compile]
        [--steps 4] [--threads 1] [--batch 2] [--height 96] [--width 128] [--iterations 12] [--hidden 128]

One supervised training step (forward with ``iterations`` GRU steps, loss, backward, AdamW) on a real
synthetic batch, per variant:

* ``nchw``: every convolution in the default contiguous layout (``model.channels_last_encoders = False``);
* ``eager``: the package default, the three image encoders in channels-last on CPU float32;
* ``channels_last``: the whole network's weights and inputs in channels-last;
* ``compile_modules``: ``torch.compile`` (inductor) of each sub-network (encoders, heads, update blocks),
  so the 12 iterations reuse one compiled update block; the Python loop and geometry stay eager;
* ``compile``: ``torch.compile`` of the whole network.

Prints the first step (compile time included) and the median over ``--rounds`` interleaved rounds of
``--steps`` steps per variant, with the mean ``/proc/loadavg``: the numbers depend on what else runs on the
machine, the interleaving keeps the ratios fair when that load drifts.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Dict, List, Optional

import torch

from dro_depth.models.dro import build_dro

__all__ = ['VARIANTS', 'time_variants', 'main']

VARIANTS = ('nchw', 'eager', 'channels_last', 'compile_modules', 'compile')
_SUBNETS = ('fnet', 'depth_head', 'pose_head', 'upmask_net', 'update_block_depth', 'update_block_pose',
            'cnet_depth', 'cnet_pose')


def _batch(batch: int, height: int, width: int) -> Dict[str, torch.Tensor]:
    from dro_depth.data.dataset import SequenceDataset
    from dro_depth.data.synthetic import generate_sequence

    seq = generate_sequence('indoor', seed=5, n_frames=8, height=2 * height, width=2 * width)
    ds = SequenceDataset([seq], offsets=(-1, -3), height=height, width=width, skip_static=True)
    return torch.utils.data.default_collate([ds[i] for i in range(batch)])


def _prepare(variant: str, hidden: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_dro(hidden_dim=hidden).train()
    if variant == 'nchw':
        model.channels_last_encoders = False
    elif variant == 'channels_last':
        model = model.to(memory_format=torch.channels_last)
    elif variant == 'compile_modules':
        for name in _SUBNETS:
            setattr(model, name, torch.compile(getattr(model, name)))
    elif variant == 'compile':
        model = torch.compile(model)
    return model


class _Runner:
    """One variant's model, optimizer and input layout; :meth:`step` times one training step."""

    def __init__(self, variant: str, batch: Dict[str, torch.Tensor], iterations: int, hidden: int):
        self.model = _prepare(variant, hidden)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        layout = torch.channels_last if variant == 'channels_last' else torch.contiguous_format
        self.batch = dict(batch, image=batch['image'].contiguous(memory_format=layout))
        self.iterations = iterations
        self.loss = float('nan')

    def step(self) -> float:
        from dro_depth.training.losses import supervised_loss

        b = self.batch
        t0 = time.perf_counter()
        out = self.model(b['image'], b['refs'], b['K'], iterations=self.iterations)
        loss = supervised_loss(out, b['depth'], b['T_ref_tgt'], b['K'], 0.85, 0.05)['loss']
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.loss = float(loss.detach())
        return time.perf_counter() - t0


def time_variants(variants: List[str], batch: Dict[str, torch.Tensor], steps: int, rounds: int,
                  iterations: int, hidden: int) -> Dict[str, Dict[str, float]]:
    """Per variant ``{'first_s', 'median_s', 'loss', 'load'}``: one first step each (compile included), then
    ``rounds`` rounds of ``steps`` steps of every variant in turn, so a load that drifts during the run
    affects all variants alike; ``load`` is the mean 1-minute load average over the timed rounds."""
    runners = {v: _Runner(v, batch, iterations, hidden) for v in variants}
    res = {v: {'first_s': r.step()} for v, r in runners.items()}
    times: Dict[str, List[float]] = {v: [] for v in variants}
    loads: List[float] = []
    for _ in range(rounds):
        for v, r in runners.items():
            times[v] += [r.step() for _ in range(steps)]
            loads.append(float(_load()))
    for v, r in runners.items():
        res[v].update(median_s=statistics.median(times[v]), loss=r.loss, load=statistics.mean(loads))
    return res


def _load() -> str:
    with open('/proc/loadavg') as f:
        return f.read().split()[0]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='python -m dro_depth.bench.train_step', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    p.add_argument('--steps', type=int, default=2, help='steps per variant per round')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--height', type=int, default=96)
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--iterations', type=int, default=12)
    p.add_argument('--hidden', type=int, default=128, choices=(64, 128))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    batch = _batch(a.batch, a.height, a.width)
    print(f'# torch {torch.__version__}, {a.threads} thread(s), batch {a.batch}, {a.height}x{a.width}, '
          f'{a.iterations} iterations, GRU {a.hidden}')
    print('| variant | first step s (incl. compile) | s/step (median) | vs eager | loss | mean load |')
    print('|---|---|---|---|---|---|')
    res = time_variants(a.variants, batch, a.steps, a.rounds, a.iterations, a.hidden)
    base = res.get('eager', next(iter(res.values())))['median_s']
    for v, r in res.items():
        print(f"| {v} | {r['first_s']:.1f} | {r['median_s']:.2f} | {r['median_s'] / base:.2f}x | {r['loss']:.4f} | "
              f"{r['load']:.1f} |")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
