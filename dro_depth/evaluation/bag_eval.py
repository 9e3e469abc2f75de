"""`dro-depth eval`: run the estimator over a ROS 2 bag offline and report depth and pose metrics.

    dro-depth eval --bag PATH --image-topic T --camera-info-topic T [--depth-gt-topic T] [--pose-gt-topic T]
                   [--iterations N] [--out DIR]

No ROS runtime is needed (bags are read and written with ``rosbags``). ``--out`` receives:

    estimates/            a ROS 2 bag with /dro/depth (32FC1), /dro/pose (PoseStamped), /dro/odom (Odometry)
    metrics.json          depth metrics (metric and per-frame median-scaled), ATE/RPE (evo), latency
    trajectory.png        estimated vs ground-truth trajectory (top view)
    error_maps.png        image / GT depth / estimate / AbsRel error for a few frames
    per_frame.png         per-frame AbsRel, latency and tracking state

Everything is written into a temporary folder next to ``--out`` and moved into place at the end: an
interrupted or failed run leaves nothing half-written (and says so).

Poses in the output bag: when ground-truth poses are given, the estimated trajectory is anchored at the
first ground-truth pose so both overlay in RViz; otherwise it is expressed in the first camera's frame.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from dro_depth.data.bags import BagError, read_bag
from dro_depth.errors import DroDepthError
from dro_depth.sfm.estimator import EstimatorConfig, SfmEstimator, TrackingState
from .report_folder import check_output, report_folder
from .scores import DepthMetricAccumulator, PoseMetricError, ate, length_error, rpe

__all__ = ['EvalOptions', 'evaluate_bag', 'main']

logger = logging.getLogger(__name__)


@dataclass
class EvalOptions:
    bag: str
    image_topic: str
    camera_info_topic: str
    depth_gt_topic: str = ''
    pose_gt_topic: str = ''
    out: str = 'eval_out'
    overwrite: bool = False
    max_frames: int = 0
    storage: str = 'mcap'
    min_depth: float = 1e-3
    max_depth: float = 80.0
    n_error_maps: int = 4
    progress: bool = True
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)


def _count_messages(bag: str, topic: str) -> Optional[int]:
    try:
        from rosbags.rosbag2 import Reader

        with Reader(bag) as reader:
            return sum(c.msgcount for c in reader.connections if c.topic.lstrip('/') == topic.lstrip('/'))
    except Exception:  # noqa: BLE001 - only used for the progress bar
        return None


def _pose_metrics(est: np.ndarray, gt: np.ndarray, stamps: np.ndarray) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    try:
        out['ate_se3'] = ate(est, gt, stamps=stamps, align='se3')
        out['ate_sim3'] = ate(est, gt, stamps=stamps, align='sim3')
        out['rpe'] = rpe(est, gt, stamps=stamps, delta=1, delta_unit='frames')
        out['length'] = length_error(est, gt)
    except PoseMetricError as exc:
        out['error'] = str(exc)
    return out


def _plots(tmp: Path, rows: List[Dict[str, Any]], est: np.ndarray, gt: Optional[np.ndarray],
           maps: List[Dict[str, np.ndarray]]) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    # Trajectory, top view. Synthetic and most robot worlds are z-up; fall back to the optical x-z plane.
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, T, style in (('estimate', est, '-'), ('ground truth', gt, '--')):
        if T is None or not len(T):
            continue
        p = T[:, :3, 3]
        span = p.max(0) - p.min(0)
        a, b = (0, 1) if span[2] <= min(span[0], span[1]) else (0, 2)
        ax.plot(p[:, a], p[:, b], style, label=name)
    ax.set_aspect('equal', adjustable='datalim')
    ax.set_title('trajectory (top view)')
    ax.legend()
    fig.savefig(tmp / 'trajectory.png', dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    idx = [r['index'] for r in rows]
    axes[0].plot(idx, [r.get('abs_rel', float('nan')) for r in rows], label='metric')
    axes[0].plot(idx, [r.get('abs_rel_median_scaled', float('nan')) for r in rows], label='median-scaled')
    axes[0].set_ylabel('AbsRel')
    axes[0].legend()
    axes[1].plot(idx, [r['latency_ms'] for r in rows])
    axes[1].set_ylabel('latency ms')
    states = [s.value for s in TrackingState]
    axes[2].plot(idx, [states.index(r['state']) for r in rows], drawstyle='steps-post')
    axes[2].set_yticks(range(len(states)), states)
    axes[2].set_xlabel('frame')
    fig.tight_layout()
    fig.savefig(tmp / 'per_frame.png', dpi=80)
    plt.close(fig)

    if maps:
        fig, axes = plt.subplots(len(maps), 4, figsize=(12, 2.6 * len(maps)), squeeze=False)
        for row, m in zip(axes, maps):
            vmax = float(np.nanpercentile(m['gt'], 95)) if np.isfinite(m['gt']).any() else None
            row[0].imshow(m['image'])
            row[0].set_title(f"frame {m['index']}")
            row[1].imshow(m['gt'], cmap='magma_r', vmin=0, vmax=vmax)
            row[1].set_title('ground truth (m)')
            row[2].imshow(m['pred'], cmap='magma_r', vmin=0, vmax=vmax)
            row[2].set_title('estimate (m)')
            im = row[3].imshow(np.abs(m['pred'] - m['gt']) / m['gt'], cmap='viridis', vmin=0, vmax=0.5)
            row[3].set_title('AbsRel error')
            fig.colorbar(im, ax=row[3], fraction=0.046)
            for a in row:
                a.axis('off')
        fig.tight_layout()
        fig.savefig(tmp / 'error_maps.png', dpi=70)
        plt.close(fig)


def evaluate_bag(opts: EvalOptions) -> Dict[str, Any]:
    """Run the evaluation; returns the metrics dict (also written to ``OUT/metrics.json``)."""
    from tqdm import tqdm

    from dro_depth.data.bag_writer import BagWriter

    out = Path(opts.out)
    check_output(out, opts.overwrite)
    frames = read_bag(opts.bag, image_topic=opts.image_topic, camera_info_topic=opts.camera_info_topic,
                      depth_topic=opts.depth_gt_topic or None, pose_topic=opts.pose_gt_topic or None)
    estimator = SfmEstimator(opts.estimator)
    total = _count_messages(opts.bag, opts.image_topic)
    if opts.max_frames and total:
        total = min(total, opts.max_frames)
    with report_folder(out) as tmp:
        acc = DepthMetricAccumulator(opts.min_depth, opts.max_depth)
        rows: List[Dict[str, Any]] = []
        est_poses, gt_poses, stamps, maps = [], [], [], []
        anchor: Optional[np.ndarray] = None
        world = 'odom'                                # the estimate's own frame until anchored at GT
        skipped: Dict[str, int] = {}
        bar = tqdm(total=total, desc='eval', unit='frame', disable=not opts.progress, dynamic_ncols=True)
        with BagWriter(tmp / 'estimates', storage=opts.storage) as bag:
            for frame in frames:
                if opts.max_frames and len(rows) >= opts.max_frames:
                    break
                try:
                    res = estimator.track(frame.image, frame.K, frame.stamp)
                except DroDepthError as exc:        # bad input; anything else is a bug and propagates
                    key = type(exc).__name__
                    skipped[key] = skipped.get(key, 0) + 1
                    logger.warning('frame %d (stamp %.6f) skipped: %s', frame.index, frame.stamp, exc)
                    continue
                if frame.pose is not None and anchor is None:
                    anchor = frame.pose
                    world = frame.pose_frame_id or world      # anchored at GT: expressed in the GT's frame
                T_out = (anchor if anchor is not None else np.eye(4)) @ res.T_world_cam
                bag.write_depth('/dro/depth', frame.stamp_ns, res.depth, frame_id=frame.frame_id)
                bag.write_pose('/dro/pose', frame.stamp_ns, T_out, frame_id=world)
                bag.write_odometry('/dro/odom', frame.stamp_ns, T_out, covariance=res.covariance,
                                   frame_id=world, child_frame_id=frame.frame_id)
                row: Dict[str, Any] = {'index': frame.index, 'stamp': frame.stamp, 'state': res.state.value,
                                       'latency_ms': res.timings['total'], 'iterations': res.iterations}
                if frame.depth is not None:
                    pred = res.depth
                    if pred.shape != frame.depth.shape:
                        import cv2
                        pred = cv2.resize(pred, frame.depth.shape[::-1], interpolation=cv2.INTER_NEAREST)
                    m = acc.add(pred, frame.depth)
                    row['abs_rel'] = m['metric']['abs_rel']
                    row['abs_rel_median_scaled'] = m['median_scaled']['abs_rel']
                    if len(maps) < opts.n_error_maps and (not maps or len(rows) % 10 == 5):
                        maps.append({'index': frame.index, 'image': frame.image, 'gt': frame.depth, 'pred': pred})
                if frame.pose is not None:
                    est_poses.append(T_out)
                    gt_poses.append(frame.pose)
                    stamps.append(frame.stamp)
                rows.append(row)
                bar.update(1)
                bar.set_postfix(state=res.state.value, ms=f"{res.timings['total']:.0f}")
        bar.close()
        if not rows:
            raise BagError(f'no frame of {opts.bag} could be processed (skipped: {skipped})')
        lat = np.array([r['latency_ms'] for r in rows])
        metrics: Dict[str, Any] = {
            'bag': str(opts.bag), 'frames': len(rows), 'skipped': skipped,
            'iterations_configured': estimator.iterations,
            'iterations': {str(n): sum(r['iterations'] == n for r in rows)
                           for n in sorted({r['iterations'] for r in rows})},    # what ran: count -> frames
            'network_size': [opts.estimator.height, opts.estimator.width],
            'checkpoint': str(estimator.checkpoint) if estimator.checkpoint else None,
            'untrained': estimator.untrained, 'device': str(estimator.device),
            'latency_ms': {'mean': float(lat.mean()), 'p50': float(np.percentile(lat, 50)),
                           'p95': float(np.percentile(lat, 95))},
            'states': {s.value: sum(r['state'] == s.value for r in rows) for s in TrackingState},
        }
        if acc.frames:
            metrics['depth'] = acc.summary()
        if len(est_poses) >= 3:
            metrics['pose'] = _pose_metrics(np.stack(est_poses), np.stack(gt_poses), np.array(stamps))
        elif opts.pose_gt_topic:
            metrics['pose'] = {'error': f'only {len(est_poses)} processed frames have a ground-truth pose on '
                                        f'{opts.pose_gt_topic}; pose metrics need at least 3'}
        with open(tmp / 'metrics.json', 'w') as f:
            json.dump(metrics, f, indent=2, default=float)
        with open(tmp / 'per_frame.json', 'w') as f:
            json.dump(rows, f, default=float)
        _plots(tmp, rows, np.stack(est_poses) if est_poses else np.zeros((0, 4, 4)),
               np.stack(gt_poses) if gt_poses else None, maps)
    return metrics


def _summary(metrics: Dict[str, Any]) -> str:
    lines = [f"frames: {metrics['frames']}  latency p50 {metrics['latency_ms']['p50']:.0f} ms  "
             f"p95 {metrics['latency_ms']['p95']:.0f} ms  states {metrics['states']}"]
    if 'depth' in metrics:
        for kind in ('metric', 'median_scaled'):
            d = metrics['depth'][kind]
            lines.append(f"depth {kind:<13} AbsRel {d['abs_rel']:.3f}  SqRel {d['sq_rel']:.3f}  "
                         f"RMSE {d['rmse']:.3f}  RMSElog {d['rmse_log']:.3f}  d1 {d['a1']:.3f}  "
                         f"d2 {d['a2']:.3f}  d3 {d['a3']:.3f}")
    pose = metrics.get('pose', {})
    if 'ate_se3' in pose:
        lines.append(f"ATE (SE3) rmse {pose['ate_se3']['rmse']:.3f} m   ATE (Sim3) rmse "
                     f"{pose['ate_sim3']['rmse']:.3f} m (scale {pose['ate_sim3']['scale']:.3f})   RPE trans rmse "
                     f"{pose['rpe']['trans']['rmse']:.4f} m  rot {pose['rpe']['rot_deg']['rmse']:.3f} deg")
    elif 'error' in pose:
        lines.append(f"pose metrics unavailable: {pose['error']}")
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='dro-depth eval', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--bag', required=True, help='ROS 2 bag folder (sqlite3 or mcap)')
    p.add_argument('--image-topic', required=True)
    p.add_argument('--camera-info-topic', required=True)
    p.add_argument('--depth-gt-topic', default='')
    p.add_argument('--pose-gt-topic', default='')
    p.add_argument('--iterations', type=int, default=EstimatorConfig.iterations)
    p.add_argument('--out', default='eval_out')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--checkpoint', default=None, help='DRO weights (default: the bundled model)')
    p.add_argument('--device', default='auto')
    p.add_argument('--precision', default='fp32', choices=['fp32', 'fp16', 'bf16'])
    p.add_argument('--width', type=int, default=EstimatorConfig.width)
    p.add_argument('--height', type=int, default=EstimatorConfig.height)
    p.add_argument('--num-refs', type=int, default=EstimatorConfig.num_refs)
    p.add_argument('--max-frames', type=int, default=0)
    p.add_argument('--max-depth', type=float, default=80.0, help='evaluation cap on ground-truth depth')
    p.add_argument('--storage', default='mcap', choices=['mcap', 'sqlite3'])
    p.add_argument('--no-progress', action='store_true')
    a = p.parse_args(argv)
    cfg = EstimatorConfig(checkpoint=a.checkpoint, device=a.device, precision=a.precision, width=a.width,
                          height=a.height, iterations=a.iterations, num_refs=a.num_refs)
    opts = EvalOptions(bag=a.bag, image_topic=a.image_topic, camera_info_topic=a.camera_info_topic,
                       depth_gt_topic=a.depth_gt_topic, pose_gt_topic=a.pose_gt_topic, out=a.out,
                       overwrite=a.overwrite, max_frames=a.max_frames, storage=a.storage, max_depth=a.max_depth,
                       progress=not a.no_progress, estimator=cfg)
    try:
        metrics = evaluate_bag(opts)
    except (DroDepthError, FileExistsError, FileNotFoundError) as exc:
        print(f'dro-depth eval: {exc}', file=sys.stderr)
        return 2
    print(_summary(metrics))
    print(f'report written to {opts.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
