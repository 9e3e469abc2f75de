"""End to end with the default models, without ROS: DRO + the light metric model + the scale filter.

    python -m dro_depth.evaluation.metric_e2e [--seeds 1000 1001] [--frames 45] [--metric-every 3] [--unit 2.5]

On held-out synthetic sequences (indoor and outdoor, seeds never trained on), the bundled DRO model tracks
every frame and the bundled light metric model sees every ``metric_every``-th frame; their depths feed
:class:`~dro_depth.metric.scaler.MetricScaler` exactly as in ``sfm_node``. Two cases:

* ``unit 1``: DRO as trained (supervised on metric synthetic depth, so nearly metric already);
* ``unit U``: DRO's output divided by U, standing in for a self-supervised model (or a new robot) whose
  unit is arbitrary: the scale filter must find U.

Reported per case: the filtered scale at the end against the best possible one (the median ratio of
ground truth to DRO depth over the sequence), depth AbsRel before (DRO units) and after scaling, the size of
the trajectory relative to the truth (1 / its Sim(3) alignment scale; 1 = metric) before and after scaling,
and the error of the summed path length (which per-frame pose jitter inflates).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Dict, List, Optional

import numpy as np

from .scores import DepthMetricAccumulator

__all__ = ['run_sequence', 'main']


def _path_length(positions: np.ndarray) -> float:
    return float(np.sum(np.linalg.norm(np.diff(positions, axis=0), axis=1))) if len(positions) > 1 else 0.0


def run_sequence(seq, estimator, metric, unit: float = 1.0, metric_every: int = 3) -> Dict[str, float]:
    """Run one sequence through a fresh ``estimator`` + ``metric`` model + a new scaler; the case's
    numbers."""
    from dro_depth.metric.scaler import MetricScaler

    scaler = MetricScaler(min_depth=0.1, max_depth=80.0)
    raw_acc, pub_acc = DepthMetricAccumulator(), DepthMetricAccumulator()
    ratios, raw_pos, pub_pos, gt_pos = [], [], [], []
    T0_inv = np.linalg.inv(seq.poses[0])
    for i in range(len(seq)):
        res = estimator.track(seq.images[i], seq.K, float(seq.stamps[i]))
        T = res.T_world_cam.copy()
        T[:3, 3] /= unit
        res = dataclasses.replace(res, depth=res.depth / unit, T_world_cam=T)
        due = i % metric_every == 0
        out = scaler.on_frame(res, pair=due)
        if due:
            scaler.on_metric(res.stamp, metric.predict(seq.images[i]).depth)
        gt = seq.depths[i]
        raw_acc.add(res.depth, gt)
        pub_acc.add(out.depth, gt)
        ok = np.isfinite(gt) & np.isfinite(res.depth) & (res.depth > 0) & (gt > 0) & (gt < 80)
        if ok.sum() > 100:
            ratios.append(float(np.median(gt[ok] / res.depth[ok])))
        raw_pos.append(res.T_world_cam[:3, 3])
        pub_pos.append(out.T_world_cam[:3, 3])
        gt_pos.append((T0_inv @ seq.poses[i])[:3, 3])
    best = float(np.median(ratios)) if ratios else float('nan')
    gt_len = _path_length(np.array(gt_pos))
    gt_arr = np.array(gt_pos)
    return {'unit': unit, 'best_scale': best, 'scale': scaler.scale, 'regime': scaler.regime.value,
            'scale_error': abs(scaler.scale / best - 1.0) if ratios else float('nan'),
            'abs_rel_dro_units': raw_acc.summary()['metric']['abs_rel'],
            'abs_rel_published': pub_acc.summary()['metric']['abs_rel'],
            'abs_rel_median_scaled': pub_acc.summary()['median_scaled']['abs_rel'],
            'path_error_dro_units': (_path_length(np.array(raw_pos)) / gt_len - 1.0 if gt_len > 0
                                     else float('nan')),
            'path_error_published': (_path_length(np.array(pub_pos)) / gt_len - 1.0 if gt_len > 0
                                     else float('nan')),
            'trajectory_scale_dro_units': _trajectory_scale(np.array(raw_pos), gt_arr),
            'trajectory_scale_published': _trajectory_scale(np.array(pub_pos), gt_arr),
            'gt_path_m': gt_len}


def _trajectory_scale(est: np.ndarray, gt: np.ndarray) -> float:
    """Size of the estimated trajectory relative to the truth: 1 / the Sim(3) (Umeyama) scale that maps it
    onto ground truth. Robust to per-frame jitter, which inflates summed path lengths."""
    from .scores import PoseMetricError, _umeyama
    try:
        _, _, c = _umeyama(est.T, gt.T, with_scale=True)
    except PoseMetricError:
        return float('nan')
    return 1.0 / c if c > 0 else float('nan')


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seeds', nargs='+', type=int, default=[1000, 1001])
    parser.add_argument('--kinds', nargs='+', default=['indoor', 'outdoor'])
    parser.add_argument('--frames', type=int, default=45)
    parser.add_argument('--metric-every', type=int, default=3)
    parser.add_argument('--unit', type=float, default=2.5, help='the arbitrary DRO unit of the second case')
    parser.add_argument('--json', default=None)
    args = parser.parse_args(argv)

    from dro_depth.data.synthetic import generate_sequence
    from dro_depth.sfm.estimator import EstimatorConfig, SfmEstimator
    from dro_depth.metric.depth_estimator import MetricDepthConfig, MetricDepthEstimator

    rows = []
    print('| scene | DRO unit | best scale | filtered scale | scale error | regime | AbsRel DRO units | '
          'AbsRel published | trajectory size DRO units | trajectory size published | '
          'path length published |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for seed in args.seeds:
        for kind in args.kinds:
            seq = generate_sequence(kind, seed=seed, n_frames=args.frames, height=240, width=320)
            for unit in (1.0, args.unit):
                estimator = SfmEstimator(EstimatorConfig(device='cpu', min_depth=1e-4, max_depth=1e5))
                metric = MetricDepthEstimator(MetricDepthConfig(device='cpu'))
                r = run_sequence(seq, estimator, metric, unit, args.metric_every)
                r.update(scene=f'{kind} {seed}')
                rows.append(r)
                print(f'| {kind} {seed} | {unit:g} | {r["best_scale"]:.3f} | {r["scale"]:.3f} | '
                      f'{100 * r["scale_error"]:.1f} % | {r["regime"]} | {r["abs_rel_dro_units"]:.3f} | '
                      f'{r["abs_rel_published"]:.3f} | {r["trajectory_scale_dro_units"]:.2f} | '
                      f'{r["trajectory_scale_published"]:.2f} | {100 * r["path_error_published"]:+.0f} % |',
                      flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
