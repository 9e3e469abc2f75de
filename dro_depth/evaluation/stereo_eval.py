"""`dro-depth eval-stereo`: disparity accuracy and latency on Middlebury 2014 Motorcycle (scikit-image copy).

    dro-depth eval-stereo                                   # bundled default model + OpenCV SGBM
    dro-depth eval-stereo --checkpoint raftstereo-NS.tar --iters 32 --scales 1 0.5
    dro-depth eval-stereo --random --methods raft            # released NS layout at random weights (sanity)
    dro-depth eval-stereo --synthetic 8                      # also 8 held-out rendered pairs (seeds 900+)

Metrics at the evaluated resolution (Middlebury convention): EPE (mean absolute disparity error, px) and
bad-1/2/3 (% of pixels with error > 1/2/3 px), over pixels with known ground truth (NaN/inf excluded).
At scale 0.5 the images are downscaled (area) and the ground truth disparity is halved.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

from .stereo_scores import disparity_errors

__all__ = ['StereoScores', 'disparity_scores', 'evaluate_method', 'sgbm_disparity', 'build_parser',
           'method_runners', 'run_middlebury', 'main']


@dataclass
class StereoScores:
    """Disparity errors of one method at one resolution."""

    method: str
    scale: float
    size: str
    epe: float
    bad1: float
    bad2: float
    bad3: float
    valid_pct: float      # % of GT pixels with a finite prediction (missing ones count as errors)
    latency_ms: float


def disparity_scores(pred: np.ndarray, gt: np.ndarray) -> dict:
    """EPE and bad-k over pixels with finite ground truth; non-finite predictions count as wrong (error
    = the GT disparity, so they enter EPE and every bad-k).

    Args:
        pred, gt: float (H, W) disparity in pixels; NaN/inf in ``gt`` marks unknown.
    """
    err, _, finite = disparity_errors(pred, gt)
    return {'epe': float(err.mean()), 'bad1': float(100 * (err > 1).mean()),
            'bad2': float(100 * (err > 2).mean()), 'bad3': float(100 * (err > 3).mean()),
            'valid_pct': float(100 * finite.mean())}


def sgbm_disparity(left: np.ndarray, right: np.ndarray, max_disparity: int = 0) -> np.ndarray:
    """OpenCV semi-global block matching (the classical baseline), NaN where it finds no match.

    Args:
        left, right: uint8 (H, W, 3) RGB rectified pair.
        max_disparity: search range; 0 = a tenth of the width (rounded up to 16).
    """
    import cv2
    num = int(np.ceil((max_disparity or left.shape[1] / 10) / 16) * 16)
    block = 5
    sgbm = cv2.StereoSGBM_create(minDisparity=0, numDisparities=num, blockSize=block, P1=8 * 3 * block ** 2,
                                 P2=32 * 3 * block ** 2, disp12MaxDiff=1, uniquenessRatio=10,
                                 speckleWindowSize=100, speckleRange=2, mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY)
    d = sgbm.compute(cv2.cvtColor(left, cv2.COLOR_RGB2GRAY), cv2.cvtColor(right, cv2.COLOR_RGB2GRAY))
    d = d.astype(np.float32) / 16.0
    return np.where(d > 0, d, np.nan).astype(np.float32)


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    import cv2
    h, w = image.shape[:2]
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _scaled_gt(gt: np.ndarray, scale: float) -> np.ndarray:
    """Nearest-neighbour GT at ``scale`` (no mixing of known and unknown pixels), disparity x scale."""
    h, w = gt.shape
    nh, nw = round(h * scale), round(w * scale)
    ys = np.minimum(((np.arange(nh) + 0.5) / scale).astype(int), h - 1)
    xs = np.minimum(((np.arange(nw) + 0.5) / scale).astype(int), w - 1)
    return gt[ys][:, xs] * np.float32(scale)


def evaluate_method(name: str, run: Callable[[np.ndarray, np.ndarray], np.ndarray], left: np.ndarray,
                    right: np.ndarray, gt: np.ndarray, scale: float, repeats: int = 1) -> StereoScores:
    """Score ``run(left, right) -> disparity`` at ``scale``; latency = median wall time of ``repeats``."""
    if scale != 1.0:
        left, right, gt = _resize(left, scale), _resize(right, scale), _scaled_gt(gt, scale)
    times, pred = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        pred = run(left, right)
        times.append(1000 * (time.perf_counter() - t0))
    s = disparity_scores(pred, gt)
    return StereoScores(method=name, scale=scale, size=f'{left.shape[1]}x{left.shape[0]}',
                        latency_ms=float(np.median(times)), **s)


def _raft_runner(checkpoint: Optional[str], random: bool, iters: int, threads: int):
    import torch

    from dro_depth.models.stereo import NS_RELEASE, RAFTStereo, load_raft_stereo
    from dro_depth.stereo import default_stereo_weights
    if threads:
        torch.set_num_threads(threads)
    if random:
        torch.manual_seed(0)
        model, label = RAFTStereo(NS_RELEASE).eval(), 'RAFT-Stereo NS layout, random weights'
    else:
        path = checkpoint or default_stereo_weights()
        model = load_raft_stereo(path)
        label = f'RAFT-Stereo {model.cfg.variant} ({"bundled default" if not checkpoint else path})'

    def run(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        lt = torch.from_numpy(left).permute(2, 0, 1)[None].float()
        rt = torch.from_numpy(right).permute(2, 0, 1)[None].float()
        return model.disparity(lt, rt, iters=iters)[0, 0].numpy()
    return f'{label}, {iters} it', run


def format_table(rows: List[StereoScores]) -> str:
    """Markdown table of the scores."""
    lines = ['| method | size | EPE px | bad-1 % | bad-2 % | bad-3 % | valid % | latency ms |',
             '|-|-|-|-|-|-|-|-|']
    for r in rows:
        lines.append(f'| {r.method} | {r.size} | {r.epe:.2f} | {r.bad1:.1f} | {r.bad2:.1f} | {r.bad3:.1f} | '
                     f'{r.valid_pct:.1f} | {r.latency_ms:.0f} |')
    return '\n'.join(lines)


METHODS = ('raft', 'default', 'random', 'sgbm')


def build_parser() -> argparse.ArgumentParser:
    """The Middlebury-mode options (``stereo_bag_eval`` adds the bag ones)."""
    parser = argparse.ArgumentParser(prog='dro-depth eval-stereo', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', help='weights of method raft (default: the bundled model)')
    parser.add_argument('--random', action='store_true', help='method raft = NS layout at random weights')
    parser.add_argument('--methods', nargs='+', default=None, metavar='M',
                        help='comma- or space-separated, of: raft (--checkpoint, else --random, else the '
                             'bundled model), default (bundled model), random (NS layout, random weights), '
                             'sgbm (default: raft sgbm on Middlebury, default,sgbm on a bag)')
    parser.add_argument('--iters', type=int, default=32, help='RAFT-Stereo iterations (official: 32)')
    parser.add_argument('--max-disparity', type=int, default=0, help='SGBM search range in px (0 = width/10)')
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = default)')
    mid = parser.add_argument_group('Middlebury 2014 Motorcycle (without --bag)')
    mid.add_argument('--scales', type=float, nargs='+', default=None, help='default: 1 0.5')
    mid.add_argument('--repeats', type=int, default=1, help='timed runs per method (median latency)')
    mid.add_argument('--synthetic', type=int, default=0,
                     help='also score N held-out synthetic (centre, right) pairs, 128x192, seeds 900+')
    return parser


def parse_methods(parser: argparse.ArgumentParser, given: Optional[List[str]],
                  default: List[str]) -> List[str]:
    """``--methods`` values (commas or spaces) checked against :data:`METHODS`, in order, without repeats."""
    names = [m for part in (given or default) for m in part.split(',') if m]
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        parser.error(f"--methods: {', '.join(bad) or 'nothing given'}: choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def method_runners(names: List[str], args: argparse.Namespace) -> List[tuple]:
    """``[(label, run(left, right) -> disparity)]`` for the method names (see :func:`build_parser`)."""
    runners = []
    for name in names:
        if name == 'sgbm':
            rng = f'{args.max_disparity} px' if args.max_disparity else 'W/10'
            runners.append((f'OpenCV SGBM (3-way, range {rng})',
                            lambda left, right: sgbm_disparity(left, right, args.max_disparity)))
        elif name == 'raft':
            runners.append(_raft_runner(args.checkpoint, args.random, args.iters, args.threads))
        else:
            runners.append(_raft_runner(None, name == 'random', args.iters, args.threads))
    return runners


def run_middlebury(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Middlebury mode of `dro-depth eval-stereo`; prints a markdown table."""
    from dro_depth.data.middlebury import load_motorcycle
    runners = method_runners(parse_methods(parser, args.methods, ['raft', 'sgbm']), args)
    pair = load_motorcycle()
    rows = [evaluate_method(name, run, pair.left, pair.right, pair.disparity_left, s, args.repeats)
            for s in (args.scales or [1.0, 0.5]) for name, run in runners]
    print('Middlebury 2014 Motorcycle (scikit-image copy), errors at the evaluated resolution')
    print(format_table(rows))
    if args.synthetic:
        print(f'\nHeld-out synthetic pairs ({args.synthetic} frames, mean over frames)')
        print(format_table([synthetic_scores(name, run, args.synthetic) for name, run in runners]))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Middlebury-only entry point (`dro-depth eval-stereo` itself is :mod:`.stereo_bag_eval`'s main)."""
    parser = build_parser()
    return run_middlebury(parser, parser.parse_args(argv))


def synthetic_scores(name: str, run: Callable[[np.ndarray, np.ndarray], np.ndarray], n: int) -> StereoScores:
    """Mean scores over ``n`` rendered (centre, right) pairs of unseen scenes (GT = rendered disparity)."""
    from dro_depth.data.triplets import synthetic_triplets
    rows = []
    for s in synthetic_triplets(n_scenes=n, frames_per_scene=1, height=128, width=192, baseline=0.12,
                                seed=900):
        centre = s.centre.permute(1, 2, 0).numpy().astype(np.uint8)
        right = s.right.permute(1, 2, 0).numpy().astype(np.uint8)
        gt = np.where(s.disparity[0].numpy() > 0, s.disparity[0].numpy(), np.nan).astype(np.float32)
        rows.append(evaluate_method(name, run, centre, right, gt, 1.0))
    mean = {k: float(np.mean([getattr(r, k) for r in rows]))
            for k in ('epe', 'bad1', 'bad2', 'bad3', 'valid_pct', 'latency_ms')}
    return StereoScores(method=name, scale=1.0, size='192x128', **mean)
