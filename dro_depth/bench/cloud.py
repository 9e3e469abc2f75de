"""Navigation cloud filter: accuracy against ground truth on the synthetic scenes, and its cost.

    python -m dro_depth.bench.cloud [--frames 20] [--repeats 200]

Accuracy: the bundled DRO model (``SfmEstimator`` defaults, 128x96 network) runs on synthetic sequences
whose depth is known. Each frame's depth is aligned to ground truth by one median scale (standing in for
the metric scaler, so only the shape of the depth is judged), then every setting of the filter is applied
and the table gives the fraction of cloud points whose range is within 5 % / 10 % of the ground-truth
range at the same pixel, and the points kept per frame. Cost: filter_points at 640x480.
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, Iterable, List, Tuple

import numpy as np

from dro_depth.geometry.cloud import CloudFilter, filter_points

#: (label, filter) rows of the accuracy table; decimation 4 throughout (the node's default).
_OFF = dict(decimation=4, min_range=0.0, max_range=float('inf'), edge_threshold=0.0, min_confidence=0.0)
SETTINGS: Tuple[Tuple[str, CloudFilter], ...] = (
    ('unfiltered', CloudFilter(**_OFF)),
    ('range 0.1-10 m', CloudFilter(**{**_OFF, 'min_range': 0.1, 'max_range': 10.0})),
    ('edge 0.10', CloudFilter(**{**_OFF, 'edge_threshold': 0.10})),
    ('edge 0.05', CloudFilter(**{**_OFF, 'edge_threshold': 0.05})),
    ('edge 0.02', CloudFilter(**{**_OFF, 'edge_threshold': 0.02})),
    ('conf 0.3', CloudFilter(**{**_OFF, 'min_confidence': 0.3})),
    ('conf 0.5', CloudFilter(**{**_OFF, 'min_confidence': 0.5})),
    ('conf 0.7', CloudFilter(**{**_OFF, 'min_confidence': 0.7})),
    ('range + edge 0.05', CloudFilter(min_confidence=0.0)),
    ('range + edge 0.05 + conf 0.7', CloudFilter(min_confidence=0.7)),
    ('defaults (0.1-10 m, conf 0.5, edge 0.05)', CloudFilter()),
)


def _frames(kinds: Iterable[str], n_frames: int, height: int, width: int):
    """(depth aligned to GT, confidence, GT depth, K) per tracked frame."""
    from dro_depth.data.synthetic import generate_sequence
    from dro_depth.sfm.estimator import EstimatorConfig, SfmEstimator

    for kind in kinds:
        seq = generate_sequence(kind, seed=5, n_frames=n_frames, height=height, width=width)
        est = SfmEstimator(EstimatorConfig(device='cpu'))
        for image, gt, stamp in zip(seq.images, seq.depths, seq.stamps):
            res = est.track(image, seq.K, float(stamp))
            ok = np.isfinite(res.depth) & np.isfinite(gt)
            if ok.sum() < 100:
                continue
            scale = np.median(gt[ok] / res.depth[ok])
            yield res.depth * np.float32(scale), res.confidence, gt, seq.K


def accuracy(n_frames: int = 20, height: int = 240, width: int = 320,
             kinds: Iterable[str] = ('indoor', 'outdoor')) -> List[Dict[str, float]]:
    """Per setting: fraction of points within 5 % / 10 % of ground-truth range, points per frame."""
    sums = {label: np.zeros(3) for label, _ in SETTINGS}
    frames = 0
    for depth, conf, gt, K in _frames(kinds, n_frames, height, width):
        frames += 1
        gt_flat = gt.ravel()
        for label, cfg in SETTINGS:
            pts = filter_points(depth, K, cfg, conf)
            z_gt = gt_flat[pts.index]
            rel = np.abs(pts.xyz[:, 2] - z_gt) / z_gt        # range ratio = depth ratio along one ray
            rel = rel[np.isfinite(rel)]                       # a point on the sky counts as wrong
            n = len(pts.index)
            sums[label] += (np.sum(rel <= 0.05) + 0.0, np.sum(rel <= 0.10) + 0.0, n)
    rows = []
    for label, _ in SETTINGS:
        w5, w10, n = sums[label]
        rows.append({'setting': label, 'within_5': w5 / max(n, 1), 'within_10': w10 / max(n, 1),
                     'points_per_frame': n / max(frames, 1)})
    return rows


def cost_ms(height: int = 480, width: int = 640, repeats: int = 200,
            cfg: CloudFilter | None = None) -> Tuple[float, float]:
    """Median and p95 ms of filter_points on a noisy two-plane depth with a confidence map."""
    cfg = cfg or CloudFilter()
    rng = np.random.default_rng(0)
    v, u = np.mgrid[0:height, 0:width]
    depth = (2.0 + 3.0 * u / width + 0.05 * rng.standard_normal((height, width))).astype(np.float32)
    depth[:, width // 2:] += 2.0                                   # one discontinuity
    conf = rng.random((height, width), dtype=np.float32)
    K = np.array([[500.0, 0, width / 2 - 0.5], [0, 500.0, height / 2 - 0.5], [0, 0, 1]])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        filter_points(depth, K, cfg, conf)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 95))


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=20, help='frames per synthetic sequence')
    parser.add_argument('--repeats', type=int, default=200, help='timing repeats')
    parser.add_argument('--no-accuracy', action='store_true', help='timing only')
    args = parser.parse_args(argv)
    if not args.no_accuracy:
        print('| setting | within 5 % of GT range | within 10 % | points / frame |')
        print('|---|---|---|---|')
        for r in accuracy(args.frames):
            print(f'| {r["setting"]} | {100 * r["within_5"]:.1f} % | {100 * r["within_10"]:.1f} % | '
                  f'{r["points_per_frame"]:.0f} |')
    print('\n| 640x480, defaults | median ms | p95 ms |')
    print('|---|---|---|')
    for n in (1, 2, 4):
        med, p95 = cost_ms(repeats=args.repeats, cfg=CloudFilter(decimation=n))
        print(f'| decimation {n} | {med:.2f} | {p95:.2f} |')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
