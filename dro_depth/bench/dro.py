"""Latency benchmark of the DRO network and the streaming estimator.

    python -m dro_depth.bench                      # default sweep on every available device
    python -m dro_depth.bench --sizes 256x320 --refs 2 --iterations 0 4 12 --devices cpu --repeat 5

Prints one table row per configuration: median milliseconds per stage (features, context, initial heads,
each GRU stage, upsampling) and the total, plus the estimator's whole ``track()`` time. Not a test: numbers
depend on the machine, which is printed first.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Dict, List

import torch

from dro_depth.models.dro import build_dro

STAGES = ('features', 'context', 'init')


def machine_description(device: torch.device) -> str:
    if device.type == 'cuda':
        return f'{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}), torch {torch.__version__}'
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return f'{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}'


def time_model(model: torch.nn.Module, height: int, width: int, refs: int, iterations: int,
               device: torch.device, precision: str, repeat: int, warmup: int = 1) -> Dict[str, float]:
    """Median per-stage milliseconds of one forward pass."""
    g = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, height, width, generator=g).to(device)
    ref = torch.rand(1, refs, 3, height, width, generator=g).to(device)
    K = torch.tensor([[[0.8 * width, 0, width / 2], [0, 0.8 * width, height / 2], [0, 0, 1]]]).to(device)
    autocast = {'fp16': torch.float16, 'bf16': torch.bfloat16}.get(precision)
    runs: List[Dict[str, float]] = []
    for i in range(warmup + repeat):
        timings: Dict[str, float] = {}
        with torch.inference_mode():
            ctx = torch.autocast(device.type, dtype=autocast) if autocast else torch.autocast(device.type,
                                                                                             enabled=False)
            with ctx:
                if device.type == 'cuda':
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                model(target, ref, K, iterations=iterations, timings=timings)
                if device.type == 'cuda':
                    torch.cuda.synchronize(device)
                timings['total'] = (time.perf_counter() - t0) * 1e3
        if i >= warmup:
            runs.append(timings)
    keys = sorted({k for r in runs for k in r})
    return {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}


def format_row(values: List[str], widths: List[int]) -> str:
    return '| ' + ' | '.join(v.rjust(w) for v, w in zip(values, widths)) + ' |'


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', nargs='+', default=['128x160', '256x320', '384x512'],
                        help='HxW network resolutions (multiples of 16)')
    parser.add_argument('--refs', nargs='+', type=int, default=[1, 2, 4])
    parser.add_argument('--iterations', nargs='+', type=int, default=[0, 4, 8, 12])
    parser.add_argument('--devices', nargs='+', default=None, help='default: cpu, and cuda when available')
    parser.add_argument('--precisions', nargs='+', default=['fp32', 'fp16', 'bf16'],
                        help='fp16/bf16 run on CUDA only')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, default=0, help='CPU threads (0: torch default)')
    parser.add_argument('--full-sweep', action='store_true',
                        help='every combination (default: vary one axis at a time around 256x320, 2 refs, 12 it)')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (['cpu', 'cuda'] if torch.cuda.is_available() else ['cpu'])
    torch.manual_seed(0)
    model = build_dro().eval()

    configs = []
    for dev in devices:
        precisions = [p for p in args.precisions if dev != 'cpu' or p == 'fp32']
        for prec in precisions:
            if args.full_sweep:
                configs += [(dev, prec, s, r, it) for s in args.sizes for r in args.refs for it in args.iterations]
            else:
                base_s = '256x320' if '256x320' in args.sizes else args.sizes[0]
                base_r = 2 if 2 in args.refs else args.refs[0]
                base_it = 12 if 12 in args.iterations else args.iterations[-1]
                seen = set()
                for c in ([(dev, prec, s, base_r, base_it) for s in args.sizes]
                          + [(dev, prec, base_s, r, base_it) for r in args.refs]
                          + [(dev, prec, base_s, base_r, it) for it in args.iterations]):
                    if c not in seen:
                        seen.add(c)
                        configs.append(c)

    for dev in devices:
        print(f'# {dev}: {machine_description(torch.device(dev))}')
    header = ['device', 'prec', 'HxW', 'refs', 'iters', 'features', 'context', 'init', 'GRU (per stage)',
              'upsample', 'total ms', 'fps']
    widths = [6, 4, 7, 4, 5, 8, 7, 6, 30, 8, 8, 5]
    print(format_row(header, widths))
    print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    for dev, prec, size, refs, it in configs:
        device = torch.device(dev)
        h, w = (int(v) for v in size.lower().split('x'))
        m = model.to(device)
        t = time_model(m, h, w, refs, it, device, prec, args.repeat)
        gru = [t[k] for k in sorted(k for k in t if k.startswith('gru_stage'))]
        gru_s = ' '.join(f'{v:.0f}' for v in gru) if gru else '-'
        row = [dev, prec, size, str(refs), str(it), f"{t.get('features', 0):.1f}", f"{t.get('context', 0):.1f}",
               f"{t.get('init', 0):.1f}", gru_s, f"{t.get('upsample', 0):.1f}", f"{t['total']:.1f}",
               f"{1e3 / t['total']:.1f}"]
        print(format_row(row, widths), flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
