"""``make demo``: sfm_node live on the embedded synthetic camera, with a bag and a contact sheet as results.

    python -m dro_depth.demo                       # or: make demo / dro-depth demo
    python -m dro_depth.ros.demo --frames 90 --rate 15 --network 320x256 --iterations 8

1. renders a synthetic indoor sequence (dro_depth.data.synthetic) with ground-truth depth and poses;
2. starts ``sfm_node`` as its own process (the installed executable, like ``ros2 run``);
3. publishes the sequence as a camera (image + camera_info, stamped now) at ``--rate`` Hz, printing the
   live input / output rate, latency and drops once a second;
4. writes into ``out/demo-<timestamp>/``: ``outputs_bag/`` (ROS 2 bag, mcap: depth, depth/camera_info,
   confidence, pose, odom), ``contact_sheet.png`` (image / ground-truth depth / depth / confidence rows,
   and the estimated trajectory against ground truth), ``summary.json`` (with depth AbsRel against ground
   truth, path lengths and the metric scale reached) and the node's log. The metric branch (bundled light
   metric model) is on, as in the node's defaults; ``--no-metric`` turns it off.

Needs only the PyPI ROS runtime (no ros2 CLI). Without a trained checkpoint the network has random
weights: the demo says so, and its depth and trajectory are meaningless until one is given
(``--checkpoint`` or the bundled default).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

__all__ = ['main', 'run_demo', 'contact_sheet', 'gt_odom_positions']


def gt_odom_positions(poses: np.ndarray) -> np.ndarray:
    """Ground-truth camera positions [N, 3] in the node's odom convention (odom = base at frame 0)."""
    from dro_depth.geometry import invert_se3
    from .frames import T_BASE_OPTICAL
    rel = invert_se3(poses[0]) @ poses                 # T_cam0_cam, i.e. the estimator's world frame
    return (T_BASE_OPTICAL @ rel)[:, :3, 3]


def _scale_align(est: np.ndarray, gt: np.ndarray) -> float:
    """Least-squares scale s minimising |s * est - gt| (both start at the origin)."""
    denom = float(np.sum(est * est))
    return float(np.sum(est * gt) / denom) if denom > 1e-12 else 1.0


def contact_sheet(path: Path, rows: List[Dict[str, Any]], est_xyz: np.ndarray, gt_xyz: np.ndarray,
                  gt_all_xyz: np.ndarray, title: str) -> Path:
    """Save image / GT depth / depth / confidence columns for a few frames and a top-view trajectory."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    n = max(len(rows), 1)
    fig = plt.figure(figsize=(3.0 * n + 5.0, 10.0))
    grid = fig.add_gridspec(4, n + 2)
    def _p95(key):
        values = np.concatenate([np.ravel(r[key]) for r in rows]) if rows else np.zeros(0)
        return float(np.nanpercentile(values, 95)) if np.isfinite(values).any() else 1.0
    depth_max = {1: _p95('gt_depth'), 2: _p95('depth')}
    names = ('image', 'ground-truth depth (m)', 'estimated depth (m)', 'confidence')
    for j, r in enumerate(rows):
        panels = (r['image'], r['gt_depth'], r['depth'], r['confidence'])
        for i, (name, data) in enumerate(zip(names, panels)):
            ax = fig.add_subplot(grid[i, j])
            if i == 0:
                ax.imshow(data)
                ax.set_title(f'frame {r["index"]}', fontsize=9)
            elif i == 3:
                im = ax.imshow(data, cmap='magma', vmin=0.0, vmax=1.0)
            else:
                cmap = matplotlib.colormaps['turbo'].with_extremes(bad='0.5')
                im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0.0, vmax=depth_max[i])
            if j == 0:
                ax.set_ylabel(name, fontsize=9)
            if i > 0 and j == n - 1:
                fig.colorbar(im, ax=ax, fraction=0.046)
            ax.set_xticks([])
            ax.set_yticks([])
    ax = fig.add_subplot(grid[:, n:])
    ax.plot(gt_all_xyz[:, 0], gt_all_xyz[:, 1], '-', color='0.6', label='ground truth (all frames)')
    if len(est_xyz):
        s = _scale_align(est_xyz, gt_xyz)
        label = f'estimated (scale-aligned x{s:.3g})'
        if not s > 0:           # no positive scale fits (e.g. an untrained network): show it unscaled
            s, label = 1.0, 'estimated (no positive scale fits; unscaled)'
        ax.plot(gt_xyz[:, 0], gt_xyz[:, 1], 'o', color='tab:green', ms=4,
                label='ground truth (processed frames)')
        ax.plot(s * est_xyz[:, 0], s * est_xyz[:, 1], '.-', color='tab:red', label=label)
    ax.set_xlabel('odom x (m, forward at start)')
    ax.set_ylabel('odom y (m, left)')
    ax.set_aspect('equal', adjustable='datalim')
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc='best')
    ax.set_title('trajectory, top view')
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def run_demo(out_root: Path, frames: int = 60, rate: float = 10.0, size: str = '320x256',
             network: str = '128x96', iterations: int = 4, num_refs: int = 2, checkpoint: str = '',
             device: str = 'cpu', seed: int = 0, cpu_threads: Optional[int] = None, log=print,
             metric: bool = True) -> Path:
    """Run the whole demo; returns the output folder."""
    from dro_depth.data.synthetic import generate_sequence
    from .transport import ensure_fastdds_profile

    ensure_fastdds_profile()
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    width, height = (int(v) for v in size.lower().split('x'))
    net_w, net_h = (int(v) for v in network.lower().split('x'))
    out = Path(out_root) / f'demo-{datetime.now().strftime("%Y%m%d-%H%M%S")}'
    out.mkdir(parents=True, exist_ok=True)
    if cpu_threads is None:
        cpu_threads = 1 if (os.cpu_count() or 1) <= 2 else 0

    log(f'[demo] rendering {frames} synthetic frames {width}x{height} ...')
    seq = generate_sequence('indoor', seed=seed, n_frames=frames, height=height, width=width, fps=rate)
    params = {'device': device, 'cpu_threads': cpu_threads, 'width': net_w, 'height': net_h,
              'iterations': iterations, 'num_refs': num_refs, 'checkpoint': checkpoint,
              'publish_points': True, 'diagnostics_period': 0.5, 'path_max_length': 1000,
              'metric.enabled': metric}
    run = _stream(seq, params, out, frames, rate, log)
    summary = _results(seq, run, out, params, frames=frames, rate=rate, input_size=(width, height))
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    (out / 'sfm_node.log').write_text(run.proc.log())
    run.proc.cleanup()
    _log_summary(summary, out, log)
    return out


@dataclass
class _DemoRun:
    """What streaming the sequence through the node left behind (internal)."""

    proc: Any                           # the stopped NodeProcess
    outputs: Any                        # the client's collected outputs
    sent: Dict[int, tuple]              # stamp -> (frame index, publish time)
    diag: Dict[str, str]                # the node's last diagnostics
    code: Optional[int]                 # the node's exit code


def _stream(seq: Any, params: Dict[str, Any], out: Path, frames: int, rate: float, log) -> _DemoRun:
    """Start the installed node, stream ``frames`` frames at ``rate`` Hz, wait until it is idle, stop it."""
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.testing.process import NodeProcess

    proc = NodeProcess(params, workdir=out / 'node').start()
    log(f'[demo] started sfm_node (pid {proc.proc.pid}): network {params["width"]}x{params["height"]}, '
        f'{params["iterations"]} iterations, {params["num_refs"]} refs, device {params["device"]}, '
        f'metric depth and scale {"on" if params["metric.enabled"] else "off"}')
    client = SfmClient(keep=frames + 10)
    sent: Dict[int, tuple] = {}
    code: Optional[int] = None
    try:
        if not client.wait_for_node(180):
            raise RuntimeError('sfm_node did not come up within 180 s; its log:\n' + proc.log()[-3000:])
        d = client.wait_diagnostics(lambda v: v.get('dro_engines_compiling', '0') == '0', 300)
        engine = f"{d.get('dro_backend', 'torch')} {d.get('dro_precision', '')}".strip()
        log(f'[demo] DRO backend: {engine} (requested {d.get("dro_backend_requested", "?")}; engines '
            f'{d.get("dro_engines_ready", "") or "none"}, compile s {d.get("dro_compile_s", "") or "-"})'
            + (f'; fell back: {d["dro_backend_fallback"]}' if d.get('dro_backend_fallback') else ''))
        log(f'[demo] node ready; streaming at {rate:g} Hz')
        t_start = time.monotonic()
        t_next, t_print = t_start, t_start + 1.0
        for i in range(frames):
            stamp = time.time_ns()
            client.camera.publish(seq.images[i], seq.K, stamp, 'camera_optical_frame')
            sent[stamp] = (i, time.monotonic())
            t_next += 1.0 / rate
            now = time.monotonic()
            if now >= t_print:
                t_print += 1.0
                log('[demo] ' + _live_line(client, sent, now - t_start))
            time.sleep(max(0.0, t_next - time.monotonic()))
        # let the node finish the frame it holds
        client.wait_diagnostics(lambda v: v.get('queue_depth') == '0' and v.get('in_inference') == '0', 120)
        client.outputs.wait(lambda o: o.count('odom') >= o.count('depth'), 5)
        log('[demo] ' + _live_line(client, sent, time.monotonic() - t_start))
        diag = client.diagnostics()
    finally:
        client.close()
        code = proc.stop(signal.SIGINT, timeout=30)
    log(f'[demo] sfm_node stopped (exit code {code})')
    return _DemoRun(proc=proc, outputs=client.outputs, sent=sent, diag=diag, code=code)


def _results(seq: Any, run: _DemoRun, out: Path, params: Dict[str, Any], *, frames: int, rate: float,
             input_size: tuple) -> Dict[str, Any]:
    """Bag, contact sheet and accuracy against the renderer's ground truth: the summary dictionary."""
    from dro_depth.evaluation.scores import DepthMetricAccumulator
    from .conversions import image_to_float

    width, height = input_size
    outputs, sent, diag = run.outputs, run.sent, run.diag
    depth_by_stamp = outputs.by_stamp('depth')
    conf_by_stamp = outputs.by_stamp('confidence')
    odom_by_stamp = outputs.by_stamp('odom')
    stamps = sorted(s for s in depth_by_stamp if s in sent)
    latencies = [(depth_by_stamp[s].t - sent[s][1]) * 1e3 for s in stamps]
    bag = outputs.write_bag(out / 'outputs_bag',
                            names=['depth', 'depth/camera_info', 'confidence', 'pose', 'odom',
                                   'metric_depth'])
    idx = [sent[s][0] for s in stamps if s in odom_by_stamp]
    est_xyz = np.array([[odom_by_stamp[s].msg.pose.pose.position.x, odom_by_stamp[s].msg.pose.pose.position.y,
                         odom_by_stamp[s].msg.pose.pose.position.z] for s in stamps if s in odom_by_stamp])
    gt_all = gt_odom_positions(seq.poses)
    # the node's odom starts at the first frame it processed: express ground truth relative to that frame
    if idx:
        gt_sel = gt_odom_positions(seq.poses[idx[0]:])[np.array(idx) - idx[0]]
        gt_all = gt_odom_positions(seq.poses[idx[0]:])
    else:
        gt_sel = np.zeros((0, 3))
    est_xyz = est_xyz.reshape(-1, 3)
    picks = np.unique(np.linspace(0, len(stamps) - 1, num=min(5, len(stamps))).round().astype(int)) \
        if stamps else []
    rows = []
    for k in picks:
        s = stamps[k]
        i = sent[s][0]
        rows.append({'index': i, 'image': seq.images[i], 'gt_depth': seq.depths[i],
                     'depth': image_to_float(depth_by_stamp[s].msg),
                     'confidence': image_to_float(conf_by_stamp[s].msg) if s in conf_by_stamp else
                     np.zeros((height, width), np.float32)})
    untrained = diag.get('untrained') == 'true'
    title = (f'dro_depth sfm_node demo: {len(stamps)} of {frames} frames processed at {rate:g} Hz input, '
             f'network {params["width"]}x{params["height"]}, {params["iterations"]} iterations')
    if untrained:
        title += '  —  UNTRAINED network (random weights)'
    sheet = contact_sheet(out / 'contact_sheet.png', rows, est_xyz, gt_sel, gt_all, title)

    # accuracy against the renderer's ground truth: metres as published, and per-frame median-scaled
    acc = DepthMetricAccumulator(max_depth=80.0)
    for st in stamps:
        acc.add(image_to_float(depth_by_stamp[st].msg), seq.depths[sent[st][0]])
    depth_acc = acc.summary()
    gt_len = float(np.sum(np.linalg.norm(np.diff(gt_sel, axis=0), axis=1))) if len(gt_sel) > 1 else 0.0
    est_len = float(np.sum(np.linalg.norm(np.diff(est_xyz, axis=0), axis=1))) if len(est_xyz) > 1 else 0.0
    return {
        'frames_sent': frames, 'rate_hz': rate, 'input_size': [width, height],
        'network_size': [params['width'], params['height']],
        'iterations': params['iterations'], 'num_refs': params['num_refs'], 'device': params['device'],
        'cpu_threads': params['cpu_threads'],
        'checkpoint': diag.get('checkpoint', ''), 'untrained': untrained,
        'depth_outputs': len(stamps), 'node_exit_code': run.code,
        'latency_ms_p50': float(np.percentile(latencies, 50)) if latencies else None,
        'latency_ms_p95': float(np.percentile(latencies, 95)) if latencies else None,
        'node_inference_ms_p50': _float(diag.get('inference_p50_ms')),
        'node_publish_ms_p50': _float(diag.get('publish_p50_ms')),
        'dropped': {k[len('dropped_'):]: int(v) for k, v in diag.items() if k.startswith('dropped_')},
        'metric_enabled': params['metric.enabled'], 'scale_regime': diag.get('scale_regime', ''),
        'scale': _float(diag.get('scale')), 'route': diag.get('route', ''),
        'metric_depth_outputs': outputs.count('metric_depth'),
        'metric_latency_ms_p50': _float(diag.get('metric_latency_p50_ms')),
        'depth_abs_rel_metric': depth_acc['metric']['abs_rel'],
        'depth_abs_rel_median_scaled': depth_acc['median_scaled']['abs_rel'],
        'path_length_m': est_len, 'gt_path_length_m': gt_len,
        'bag': str(bag), 'contact_sheet': str(sheet),
    }


def _log_summary(summary: Dict[str, Any], out: Path, log) -> None:
    """The closing lines of the demo: rates, latency, scale and accuracy, where the files are."""
    log('')
    nan = float('nan')
    log(f'[demo] {summary["depth_outputs"]} depth maps from {summary["frames_sent"]} frames; latency publish '
        f'-> depth p50 {summary["latency_ms_p50"] or nan:.0f} ms, p95 {summary["latency_ms_p95"] or nan:.0f} '
        f'ms; node inference p50 {summary["node_inference_ms_p50"] or nan:.0f} ms')
    log(f'[demo] scale: {summary["scale_regime"] or "-"} (scale {summary["scale"] or nan:.3f}, head '
        f'{summary["route"] or "-"}, {summary["metric_depth_outputs"]} metric_depth maps); depth AbsRel vs '
        f'ground truth {summary["depth_abs_rel_metric"]:.3f} as published, '
        f'{summary["depth_abs_rel_median_scaled"]:.3f} '
        f'median-scaled; path {summary["path_length_m"]:.2f} m (truth {summary["gt_path_length_m"]:.2f} m)')
    if summary['untrained']:
        log('[demo] NOTE: no trained DRO checkpoint: the network has random weights, so depth and trajectory '
            'are meaningless (pass --checkpoint, or ship dro_depth/weights/dro_default.safetensors)')
    log(f'[demo] results in {out}/ : outputs_bag/ (mcap), contact_sheet.png, summary.json, sfm_node.log')


def _float(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _live_line(client: Any, sent: Dict[int, tuple], elapsed: float) -> str:
    depth = client.outputs.by_stamp('depth')
    lat = [(r.t - sent[s][1]) * 1e3 for s, r in depth.items() if s in sent]
    d = client.diagnostics()
    lat_text = f'latency p50 {np.percentile(lat, 50):.0f} ms' if lat else 'latency -'
    elapsed = max(elapsed, 1e-3)
    return (f't={elapsed:4.1f}s  in {len(sent) / elapsed:4.1f} Hz  out {len(depth) / elapsed:4.1f} Hz'
            f'  depth {len(depth)}  {lat_text}  dropped(overload) {d.get("dropped_overload", "-")}'
            f'  state {d.get("tracking_state", "-")}  scale {d.get("scale_regime", "-")} '
            f'{d.get("scale", "")}')


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m dro_depth.demo', description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='out', help='parent folder of demo-<timestamp>/')
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--rate', type=float, default=10.0, help='camera rate (Hz)')
    parser.add_argument('--size', default='320x256', help='camera image WIDTHxHEIGHT')
    parser.add_argument('--network', default='128x96', help='network input WIDTHxHEIGHT (multiples of 16)')
    parser.add_argument('--iterations', type=int, default=4)
    parser.add_argument('--num-refs', type=int, default=2)
    parser.add_argument('--checkpoint', default='', help="DRO checkpoint ('' = bundled default if any)")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-metric', action='store_true', help='metric depth and scale off (DRO units)')
    args = parser.parse_args(argv)
    run_demo(Path(args.out), args.frames, args.rate, args.size, args.network, args.iterations, args.num_refs,
             args.checkpoint, args.device, args.seed, metric=not args.no_metric)
    return 0


if __name__ == '__main__':
    sys.exit(main())
