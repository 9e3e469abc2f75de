"""Latency of the metric-depth models per frame, and the error of reduced precision against fp32.

    python -m dro_depth.bench.metric                              # ZoeD_M12_NK + light model, every device
    python -m dro_depth.bench.metric --models light --sizes 192x256 384x512 --precisions fp32 bf16

One row per (model, device, precision, network size): median milliseconds of ``infer()`` on one image of
that size, as the node runs it (ZoeDepth: the official reflect padding, resize to the network size,
forward, bicubic resize back; the light model: no padding, as it was trained),
and for bf16 / fp16 the median and 99th-percentile relative depth difference to fp32 on the same image.
The released ZoeDepth weights cannot be downloaded here, so ZoeD_M12_NK runs at random weights: its latency
is exact (same shapes and operations), its precision error is only indicative. The light model uses the
bundled trained weights when present. Not a test: numbers depend on the machine, printed first.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import List, Optional, Tuple

import numpy as np
import torch

from .dro import format_row, machine_description
from dro_depth.metric.depth_estimator import PRECISIONS

__all__ = ['main', 'time_infer']


def _model(name: str, size: Tuple[int, int]):
    if name == 'zoed_nk':
        from dro_depth.models.metric import build_zoedepth
        torch.manual_seed(0)
        return build_zoedepth('NK', img_size=size).eval(), 'random weights'
    from dro_depth.weights import default_metric_checkpoint
    path = default_metric_checkpoint()
    if path is not None:
        from dro_depth.models.metric.light import load_light_zoedepth
        model, _ = load_light_zoedepth(path, img_size=size)
        return model, 'bundled weights'
    from dro_depth.models.metric import build_light_zoedepth
    return build_light_zoedepth('NK', width=64, img_size=size, output_stride=2).eval(), 'random weights'


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


@torch.inference_mode()
def time_infer(model, image: torch.Tensor, repeat: int, warmup: int = 1,
               pad_input: bool = True) -> Tuple[float, torch.Tensor]:
    """Median milliseconds of ``model.infer(image, 'indoor')`` and the last output depth."""
    times: List[float] = []
    depth = None
    for i in range(warmup + repeat):
        _sync(image.device)
        t0 = time.perf_counter()
        depth = model.infer(image, 'indoor', pad_input=pad_input).metric_depth
        _sync(image.device)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), depth.float().cpu()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=['zoed_nk', 'light'], choices=['zoed_nk', 'light'])
    parser.add_argument('--sizes', nargs='+', default=['384x512'], help='HxW network (and input) sizes')
    parser.add_argument('--light-sizes', nargs='+', default=['192x256', '384x512'],
                        help='sizes for the light model (default: its own and 384x512)')
    parser.add_argument('--devices', nargs='+', default=None, help='default: cpu, and cuda when available')
    parser.add_argument('--precisions', nargs='+', default=['fp32', 'bf16', 'fp16'],
                        help='fp16 runs on CUDA only; bf16 and fp16 apply to the core, the head stays fp32')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, default=0, help='CPU threads (0: torch default)')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (['cpu', 'cuda'] if torch.cuda.is_available() else ['cpu'])
    for dev in devices:
        print(f'# {dev}: {machine_description(torch.device(dev))}')
    if 'cuda' not in devices:
        print('# no CUDA device here: GPU rows are missing')
    header = ['model', 'weights', 'device', 'prec', 'HxW', 'ms/frame', 'fps', 'rel.err p50', 'rel.err p99']
    widths = [8, 15, 6, 4, 7, 9, 5, 11, 11]
    print(format_row(header, widths))
    print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    for name in args.models:
        for size in (args.light_sizes if name == 'light' else args.sizes):
            h, w = (int(v) for v in size.lower().split('x'))
            model, weights = _model(name, (h, w))
            g = torch.Generator().manual_seed(0)
            image = torch.rand(1, 3, h, w, generator=g)
            for dev in devices:
                device = torch.device(dev)
                reference = None
                for prec in args.precisions:
                    if prec == 'fp16' and device.type != 'cuda':
                        continue
                    model.to(device=device, dtype=torch.float32)
                    model.core.to(PRECISIONS[prec])
                    # as the node runs them: released models with the official padding, light ones without
                    ms, depth = time_infer(model, image.to(device), args.repeat, pad_input=name != 'light')
                    err50 = err99 = '-'
                    if prec == 'fp32':
                        reference = depth
                    elif reference is not None:
                        rel = ((depth - reference).abs() / reference.clamp_min(1e-6)).flatten().numpy()
                        err50, err99 = f'{np.percentile(rel, 50):.2e}', f'{np.percentile(rel, 99):.2e}'
                    print(format_row([name, weights, dev, prec, size, f'{ms:.0f}', f'{1e3 / ms:.1f}', err50,
                                      err99], widths), flush=True)
            del model
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
