"""Latency of Depth Anything V2 per frame through MonoDepthEstimator (official resize in and out).

    python -m dro_depth.bench.depth_anything                         # vits, 640x480 input, fp32 + bf16
    python -m dro_depth.bench.depth_anything --input-sizes 518 308 196 140 --threads 2
    python -m dro_depth.bench.depth_anything --backend openvino --input-sizes 196

One row per (input size, precision): the network size the official lower-bound resize gives for the image,
and the median milliseconds of ``predict()`` (resize, network, resize back). Released weights cannot be
downloaded here, so the model runs at random weights: the latency is exact (same shapes and operations).
Not a test: numbers depend on the machine (and its load), printed first.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from dro_depth.models.depth_anything import build_depth_anything
from dro_depth.mono import MonoDepthConfig, MonoDepthEstimator
from .dro import format_row, machine_description

__all__ = ['main', 'time_predict']


def time_predict(est: MonoDepthEstimator, image: np.ndarray, repeats: int) -> float:
    """Median milliseconds of ``est.predict(image)`` after one warm-up call."""
    est.predict(image)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        est.predict(image)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--encoder', default='vits', choices=('vits', 'vitb', 'vitl'))
    parser.add_argument('--image', default='480x640', help='raw image HxW')
    parser.add_argument('--input-sizes', nargs='+', type=int, default=[518, 392, 308, 252, 196, 140])
    parser.add_argument('--precisions', nargs='+', default=['fp32', 'bf16'], choices=('fp32', 'bf16'))
    parser.add_argument('--backend', default='torch', choices=('torch', 'openvino', 'tensorrt', 'auto'))
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = all cores)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    h, w = (int(v) for v in args.image.lower().split('x'))
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    model = build_depth_anything(args.encoder)
    print(f'# {machine_description(torch.device("cpu"))}, load average {os.getloadavg()[0]:.1f}; '
          f'DA-V2 {args.encoder}, image {h}x{w}, backend {args.backend}')
    widths = [10, 12, 9, 11]
    print(format_row(['input_size', 'network', 'precision', 'median ms'], widths))
    print('|' + '|'.join('-' * (n + 1) + ':' for n in widths) + '|')
    for size in args.input_sizes:
        for prec in args.precisions:
            est = MonoDepthEstimator(MonoDepthConfig(checkpoint='<random>', encoder=args.encoder,
                                                     input_size=size, precision=prec, device='cpu',
                                                     backend=args.backend, threads=args.threads), model)
            ms = time_predict(est, image, args.repeats)
            net = est.predict(image).network_size
            print(format_row([str(size), f'{net[0]}x{net[1]}', prec, f'{ms:.0f}'], widths), flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
