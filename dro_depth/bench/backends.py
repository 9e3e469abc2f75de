"""Backend table: DRO and the metric models per backend and precision, against torch fp32.

    python -m dro_depth.bench.backends                       # default rows (make bench runs this)
    python -m dro_depth.bench.backends --dro 96x320x12 --repeat 5 --threads 2
    python -m dro_depth.bench.backends --zoedepth            # + ZoeD_M12_NK (BEiT-L) at 384x512: slow

Per row: compile seconds (export + compile, no cache), median ms per call, and the difference to torch
fp32 on the same inputs: max relative inverse depth (fp32 rows), median relative inverse depth and pose
(bf16 / fp16 rows; for the metric models: metric depth); for DRO also each engine's max relative distance
to a float64 run, which shows the floor fp32 rounding sets (torch fp32's own distance is on its row). Weights: the released-layout DRO file of the
shared reference folder when present (random weights, released shapes), else the bundled model; the
bundled light metric model; ZoeD_M12_NK with random weights. The load average is printed before and
after: other jobs on the machine change the numbers.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from dro_depth.backends import compile_dro, compile_module, unavailable_reason
from dro_depth.bench.dro import machine_description

__all__ = ['main']

DEFAULT_DRO = ('96x128x4', '96x320x12', '192x640x12')
REFERENCE_DRO = Path(__file__).resolve().parents[3] / 'shared' / 'reference' / 'dro' / 'dro_official_it12h.pt'


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _rel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).abs() / b.float().abs().clamp(min=1e-3)


def _float64_inv_depth(model: torch.nn.Module, target: torch.Tensor, refs: torch.Tensor, K: torch.Tensor,
                       iterations: int) -> torch.Tensor:
    """Inverse depth of a float64 copy of ``model``: the yardstick that shows fp32's own rounding floor
    (a recurrent network amplifies rounding, so two correct fp32 engines differ by about twice that)."""
    model64 = copy.deepcopy(model).double()
    return model64(target.double(), refs.double(), K.double(), iterations=iterations).inv_depth.float()


def _backends(device: torch.device) -> List[Tuple[str, str]]:
    rows = [('openvino', 'fp32'), ('openvino', 'bf16')]
    if not unavailable_reason('tensorrt', device):
        rows += [('tensorrt', 'fp16'), ('tensorrt', 'bf16')]
    return [r for r in rows if not unavailable_reason(r[0], device)]


def _print_row(model: str, size: str, extra: str, backend: str, precision: str, compile_s: float, ms: float,
               torch_ms: float, diffs: str) -> None:
    speed = f'{torch_ms / ms:5.2f}x' if ms > 0 else '   - '
    print(f'{model:<10} {size:>8} {extra:>8} {backend:>9} {precision:>5} {compile_s:8.1f} {ms:9.1f} '
          f'{speed:>7}  {diffs}', flush=True)


def bench_dro(spec: str, refs: int, repeat: int, threads: int, device: torch.device) -> None:
    from dro_depth.models.dro import load_dro
    from dro_depth.weights import default_dro_checkpoint

    h, w, it = (int(v) for v in spec.lower().split('x'))
    source = REFERENCE_DRO if REFERENCE_DRO.is_file() else default_dro_checkpoint()
    model = load_dro(str(source) if source else None)
    g = torch.Generator().manual_seed(0)
    target, refs_t = torch.rand(1, 3, h, w, generator=g), torch.rand(1, refs, 3, h, w, generator=g)
    K = torch.tensor([[[0.9 * w, 0.0, w / 2], [0.0, 0.9 * w, h / 2], [0.0, 0.0, 1.0]]])
    with torch.inference_mode():
        ref = model(target, refs_t, K, iterations=it)
        torch_ms = _median_ms(lambda: model(target, refs_t, K, iterations=it), repeat)
        ref64 = _float64_inv_depth(model, target, refs_t, K, it)
    extra = f'{refs}r/{it}it'
    floor = _rel(ref.inv_depth, ref64).max()
    _print_row('DRO', f'{h}x{w}', extra, 'torch', 'fp32', 0.0, torch_ms, torch_ms,
               f'(reference; fp32 floor: max rel {floor:.1e} to float64)')
    for backend, precision in _backends(device):
        run = compile_dro(model, backend=backend, precision=precision, height=h, width=w, num_refs=refs,
                          iterations=it, device=device, threads=threads, strict=True)
        out = run(target, refs_t, K)
        ms = _median_ms(lambda: run(target, refs_t, K), repeat)
        rel_inv, rel_pose = _rel(out.inv_depth, ref.inv_depth), _rel(out.poses, ref.poses)
        diffs = (f'inv max {rel_inv.max():.1e} / median {rel_inv.median():.1e}, '
                 f'pose median {rel_pose.median():.1e}; to float64 max {_rel(out.inv_depth, ref64).max():.1e}')
        _print_row('DRO', f'{h}x{w}', extra, backend, precision, run.info.compile_s, ms, torch_ms, diffs)


def bench_metric(name: str, model: torch.nn.Module, size: Tuple[int, int], repeat: int, threads: int,
                 device: torch.device) -> None:
    h, w = size
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))

    def call(image: torch.Tensor):
        return model(image, 'nyu', resize=False).metric_depth
    with torch.inference_mode():
        ref = call(x)
        torch_ms = _median_ms(lambda: call(x), repeat)
    _print_row(name, f'{h}x{w}', 'nyu head', 'torch', 'fp32', 0.0, torch_ms, torch_ms, '(reference)')
    for backend, precision in _backends(device):
        run = compile_module(model, (x,), backend=backend, precision=precision, device=device,
                             threads=threads, call=call, name=name, strict=True)
        out = run(x)
        ms = _median_ms(lambda: run(x), repeat)
        rel = _rel(out, ref)
        _print_row(name, f'{h}x{w}', 'nyu head', backend, precision, run.info.compile_s, ms, torch_ms,
                   f'depth max {rel.max():.1e} / median {rel.median():.1e}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dro', nargs='*', default=list(DEFAULT_DRO), help='HxWxITERATIONS rows')
    parser.add_argument('--refs', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2, help='torch and engine threads')
    parser.add_argument('--no-metric', action='store_true', help='skip the light metric model row')
    parser.add_argument('--zoedepth', action='store_true', help='add ZoeD_M12_NK at 384x512 (minutes)')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f'# backends on {machine_description(device)}; engine threads {args.threads}; '
          f'load average {os.getloadavg()[0]:.2f} at start')
    print(f'{"model":<10} {"size":>8} {"setting":>8} {"backend":>9} {"prec":>5} {"compile":>8} {"ms":>9} '
          f'{"vs torch":>7}  difference to torch fp32')
    for spec in args.dro:
        bench_dro(spec, args.refs, args.repeat, args.threads, device)
    if not args.no_metric:
        from dro_depth.models.metric.light import load_light_zoedepth
        from dro_depth.weights import default_metric_checkpoint
        light, _ = load_light_zoedepth(default_metric_checkpoint())
        bench_metric('light NK', light, (192, 256), args.repeat, args.threads, device)
    if args.zoedepth:
        from dro_depth.models.metric.zoedepth import build_zoedepth
        torch.manual_seed(0)
        zoe = build_zoedepth('NK').eval()
        bench_metric('ZoeD_M12_NK', zoe, (384, 512), max(1, args.repeat // 3), args.threads, device)
    print(f'# load average {os.getloadavg()[0]:.2f} at the end')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
