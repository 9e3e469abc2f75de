"""`dro-depth eval-stereo`: stereo disparity accuracy and latency on a ROS 2 bag with ground-truth depth,
or (without ``--bag``) on Middlebury 2014 Motorcycle (below).

    dro-depth synth --out data/stereo --stereo 0.12 --frames 16      # a synthetic stereo bag with GT depth
    dro-depth eval-stereo --bag data/stereo --left-topic /left/image --right-topic /right/image \\
        --left-info /left/camera_info --right-info /right/camera_info --depth-topic /left/depth \\
        --methods default,sgbm,random --iters 32 --out eval_stereo
    dro-depth eval-stereo --bag kitti_bag ... --kitti      # fill prediction holes as the KITTI devkit does

Pairing: left and right images, both camera_infos and the GT depth are joined by exact header stamp
(integer ns); left frames missing any of them are skipped and counted per reason, as are frames whose
calibration is unusable (not rectified, zero/negative or vertical baseline), whose sizes disagree, or whose
GT depth is not in the left image's frame. The topics default to the layout `dro-depth synth --stereo`
writes.

Ground truth: depth (32FC1 metres, or 16UC1 millimetres, REP 118) of the left view becomes disparity
``d = fx * B / Z - doffs`` with the left camera's fx and the baseline from the right projection matrix
(``P[0, 3] = -fx * B``; doffs = cx_right - cx_left, 0 for most rigs); NaN, 0 and inf depth are excluded.

Metrics, pooled over every GT pixel of every evaluated frame (see :mod:`.stereo_scores`): EPE, bad-1/2/3
(%), D1 (KITTI 2015: error > 3 px and > 5 % of the GT disparity, % of GT pixels), valid (% of GT pixels
the method predicted; a missing one is scored as disparity 0 unless ``--kitti`` fills it first), and the
median wall time per pair. ``--out`` receives metrics.json, per_frame.json, summary.md (the table) and
error_maps.png, written into a temporary folder and moved into place at the end (``--overwrite`` replaces
an existing report only once the new one is complete).
"""
from __future__ import annotations

import argparse
import json
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from dro_depth.data.bags import BagError
from dro_depth.data.stereo_bags import StereoBagFrame, StereoBagReader, StereoTopics
from dro_depth.stereo.calibration import StereoCalibration, StereoCalibrationError
from . import stereo_eval
from .report_folder import check_output, report_folder
from .stereo_eval import build_parser, method_runners, parse_methods, run_middlebury
from .stereo_scores import DisparityAccumulator, interpolate_background

__all__ = ['StereoBagOptions', 'evaluate_stereo_bag', 'format_bag_table', 'main']


Runner = Tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]
DEFAULT_TOPICS = StereoTopics(left='/left/image', right='/right/image', left_info='/left/camera_info',
                              right_info='/right/camera_info', depth='/left/depth')


@dataclass
class StereoBagOptions:
    """What :func:`evaluate_stereo_bag` reads and writes.

    Attributes:
        bag: bag folder. topics: :class:`StereoTopics`. out: report folder; overwrite: replace it.
        kitti: fill prediction holes with the KITTI devkit's background interpolation before scoring.
        max_frames: stop after this many evaluated frames (0 = all).
        check_rectified: refuse camera_infos whose R is not the identity.
        n_error_maps: frames shown in error_maps.png.
    """

    bag: str
    topics: StereoTopics = field(default_factory=lambda: DEFAULT_TOPICS)
    out: str = 'eval_stereo_out'
    overwrite: bool = False
    kitti: bool = False
    max_frames: int = 0
    check_rectified: bool = True
    n_error_maps: int = 3
    progress: bool = True


def _ground_truth(frame: StereoBagFrame, check_rectified: bool, reader: StereoBagReader
                  ) -> Optional[Tuple[StereoCalibration, np.ndarray]]:
    """Calibration and GT disparity of a frame, or None after counting why it cannot be used."""
    li, ri = frame.left_info, frame.right_info
    h, w = frame.left.shape[:2]
    where = f'stamp {frame.stamp_ns} ns'
    sizes = {'right image': frame.right.shape[:2], 'depth': frame.depth.shape[:2],
             'left camera_info': (li.height, li.width), 'right camera_info': (ri.height, ri.width)}
    for what, size in sizes.items():
        if tuple(size) != (h, w) and tuple(size) != (0, 0):
            reader.skip('bad_size', f'{where}: left image {w}x{h} vs {what} {size[1]}x{size[0]}')
            return None
    if frame.depth_frame_id and frame.left_frame_id and frame.depth_frame_id != frame.left_frame_id:
        reader.skip('bad_frame', f'{where}: GT depth in frame {frame.depth_frame_id!r}, left image in '
                                 f'{frame.left_frame_id!r} (the GT must be the left view\'s)')
        return None
    try:
        calib = StereoCalibration.from_projections(li.P, ri.P, li.R, ri.R, w, h, check_rectified)
    except StereoCalibrationError as exc:
        reader.skip('bad_calibration', f'{where}: {exc}')
        return None
    gt = calib.disparity_from_depth(frame.depth)
    if not np.isfinite(gt).any():
        reader.skip('no_valid_gt', f'{where}: the GT depth has no finite value > 0')
        return None
    return calib, gt


def _plot_error_maps(path: Path, maps: List[Dict[str, Any]], names: List[str]) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    cols = 2 + len(names)
    fig, axes = plt.subplots(len(maps), cols, figsize=(3.2 * cols, 2.6 * len(maps)), squeeze=False)
    for row, m in zip(axes, maps):
        vmax = float(np.nanpercentile(m['gt'], 99))
        row[0].imshow(m['left'])
        row[0].set_title(f"frame {m['index']} (left)", fontsize=8)
        im = row[1].imshow(m['gt'], cmap='magma', vmin=0, vmax=vmax)
        row[1].set_title('GT disparity (px)', fontsize=8)
        fig.colorbar(im, ax=row[1], fraction=0.046)
        for a, name, pred in zip(row[2:], names, m['preds']):
            err = np.abs(np.where(np.isfinite(pred), pred, 0.0) - m['gt'])
            im = a.imshow(err, cmap='viridis', vmin=0, vmax=5)
            a.set_title(textwrap.fill(f'|error| px, {name}: EPE {np.nanmean(err):.2f}', 40), fontsize=7)
            fig.colorbar(im, ax=a, fraction=0.046)
        for a in row:
            a.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def _score_frames(opts: StereoBagOptions, reader: StereoBagReader, runners: List[Runner]) -> tuple:
    """Run every method on every usable frame: accumulators, latencies, per-frame rows, error-map frames and
    the first frame's calibration."""
    from tqdm import tqdm
    accs = [DisparityAccumulator() for _ in runners]
    lat: List[List[float]] = [[] for _ in runners]
    rows: List[Dict[str, Any]] = []
    maps: List[Dict[str, Any]] = []
    n = min(len(reader), opts.max_frames or len(reader))
    show = set(np.linspace(0, max(n - 1, 0), min(opts.n_error_maps, n)).round().astype(int).tolist())
    calib0: dict = {}
    bar = tqdm(total=n, desc='eval-stereo', unit='pair', disable=not opts.progress, dynamic_ncols=True)
    for frame in reader:
        if opts.max_frames and len(rows) >= opts.max_frames:
            break
        found = _ground_truth(frame, opts.check_rectified, reader)
        if found is None:
            continue
        calib, gt = found
        calib0 = calib0 or {'fx': calib.fx, 'baseline_m': calib.baseline, 'doffs_px': calib.doffs,
                            'width': calib.width, 'height': calib.height}
        row: Dict[str, Any] = {'index': frame.index, 'stamp_ns': frame.stamp_ns, 'methods': []}
        preds = []
        for k, (name, run) in enumerate(runners):
            t0 = time.perf_counter()
            pred = np.asarray(run(frame.left, frame.right), np.float32)
            lat[k].append(1000 * (time.perf_counter() - t0))
            predicted = None
            if opts.kitti:                      # valid % stays the method's own density
                predicted = np.isfinite(pred) & (pred >= 0)
                pred = interpolate_background(pred)
            row['methods'].append(dict(accs[k].add(pred, gt, predicted), method=name, latency_ms=lat[k][-1]))
            preds.append(pred)
        if len(rows) in show:
            maps.append({'index': frame.index, 'left': frame.left, 'gt': gt, 'preds': preds})
        rows.append(row)
        bar.update(1)
    bar.close()
    return accs, lat, rows, maps, calib0


def evaluate_stereo_bag(opts: StereoBagOptions, runners: List[Runner]) -> Dict[str, Any]:
    """Score ``runners`` (``(label, run(left, right) -> disparity)``) over the bag's stereo pairs and write
    the report into ``opts.out``; returns the metrics (also in ``metrics.json``).

    Raises:
        FileExistsError: ``out`` exists without ``overwrite``. BagError: a missing or unreadable bag, a topic
        it lacks (the message lists its topics), or no frame that could be evaluated (with the reasons).
    """
    out = Path(opts.out)
    check_output(out, opts.overwrite)
    reader = StereoBagReader(opts.bag, opts.topics)
    accs, lat, rows, maps, calib0 = _score_frames(opts, reader, runners)
    if not rows:
        raise BagError(f'no frame of {opts.bag} could be evaluated ({reader.frames_in_bag} left images; '
                       f'skipped: {reader.skipped or "none"}; first reasons: {reader.skip_details or "-"})')
    gt_px = sum(r['methods'][0]['pixels'] for r in rows)
    metrics: Dict[str, Any] = {
        'bag': str(opts.bag), 'topics': asdict(opts.topics), 'kitti_hole_filling': opts.kitti,
        'frames_in_bag': reader.frames_in_bag, 'frames_evaluated': len(rows),
        'frames_skipped': reader.skipped,
        'skip_examples': reader.skip_details, 'unmatched_messages': reader.unmatched,
        'calibration': calib0, 'gt_pixels': gt_px,
        'methods': [dict(name=name, **acc.summary(), latency_ms={'p50': float(np.median(t)),
                                                                  'mean': float(np.mean(t))})
                    for (name, _), acc, t in zip(runners, accs, lat)],
    }
    with report_folder(out) as tmp:
        (tmp / 'metrics.json').write_text(json.dumps(metrics, indent=2, default=float))
        (tmp / 'per_frame.json').write_text(json.dumps(rows, default=float))
        (tmp / 'summary.md').write_text(format_bag_table(metrics) + '\n')
        if maps:
            _plot_error_maps(tmp / 'error_maps.png', maps, [name for name, _ in runners])
    return metrics


def format_bag_table(metrics: Dict[str, Any]) -> str:
    """Markdown table of a bag evaluation's methods, with the frame accounting below it."""
    lines = ['| method | frames | EPE px | bad-1 % | bad-2 % | bad-3 % | D1 % | valid % | latency ms (p50) |',
             '|-|-|-|-|-|-|-|-|-|']
    for m in metrics['methods']:
        lines.append(f"| {m['name']} | {metrics['frames_evaluated']} | {m['epe']:.2f} | {m['bad1']:.1f} | "
                     f"{m['bad2']:.1f} | {m['bad3']:.1f} | {m['d1']:.1f} | {m['valid_pct']:.1f} | "
                     f"{m['latency_ms']['p50']:.0f} |")
    skipped = ', '.join(f'{k}: {v}' for k, v in metrics['frames_skipped'].items()) or 'none'
    lines.append(f"\n{metrics['frames_evaluated']} of {metrics['frames_in_bag']} left frames evaluated "
                 f"(skipped: {skipped}); {metrics['gt_pixels']} GT pixels"
                 + (', holes filled as the KITTI devkit does' if metrics['kitti_hole_filling'] else ''))
    return '\n'.join(lines)


def _add_bag_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group('bag mode (with --bag)')
    g.add_argument('--bag', help='ROS 2 bag (sqlite3 or mcap) with left/right images, camera_infos, GT depth')
    g.add_argument('--left-topic', default=DEFAULT_TOPICS.left)
    g.add_argument('--right-topic', default=DEFAULT_TOPICS.right)
    g.add_argument('--left-info', default=DEFAULT_TOPICS.left_info, help='left camera_info topic')
    g.add_argument('--right-info', default=DEFAULT_TOPICS.right_info, help='right camera_info topic')
    g.add_argument('--depth-topic', default=DEFAULT_TOPICS.depth,
                   help='GT depth of the left view (32FC1 m or 16UC1 mm)')
    g.add_argument('--kitti', action='store_true',
                   help='fill prediction holes with the KITTI devkit background interpolation before scoring')
    g.add_argument('--no-check-rectified', action='store_true', help='accept camera_infos whose R is not I')
    g.add_argument('--max-frames', type=int, default=0)
    g.add_argument('--out', default='eval_stereo_out', help='report folder')
    g.add_argument('--overwrite', action='store_true')
    g.add_argument('--no-progress', action='store_true')


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `dro-depth eval-stereo` (bag mode with ``--bag``, Middlebury otherwise)."""
    parser = build_parser()
    parser.description = f"{__doc__}\nMiddlebury mode: {stereo_eval.__doc__.split(': ', 1)[1]}"
    _add_bag_arguments(parser)
    args = parser.parse_args(argv)
    if not args.bag:
        if args.kitti:
            parser.error('--kitti applies to a bag evaluation (--bag)')
        return run_middlebury(parser, args)
    if args.scales or args.synthetic:
        parser.error('--scales and --synthetic apply to the Middlebury evaluation (without --bag)')
    runners = method_runners(parse_methods(parser, args.methods, ['default', 'sgbm']), args)
    opts = StereoBagOptions(
        bag=args.bag, topics=StereoTopics(args.left_topic, args.right_topic, args.left_info, args.right_info,
                                          args.depth_topic),
        out=args.out, overwrite=args.overwrite, kitti=args.kitti, max_frames=args.max_frames,
        check_rectified=not args.no_check_rectified, progress=not args.no_progress)
    metrics = evaluate_stereo_bag(opts, runners)
    print(format_bag_table(metrics))
    print(f'report written to {opts.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
