"""Benchmark of the ROS skin: what sfm_node adds around the estimator, and end-to-end latency.

    python -m dro_depth.ros.bench                       # 640x480 input, 128x96 network, 2 iterations
    python -m dro_depth.ros.bench --frames 30 --width 320 --height 256 --iterations 4

1. Per-frame overhead beyond the estimator, in this process at the input size: decoding the image,
   the camera model, building and publishing every output (depth, depth/camera_info, confidence, pose,
   odom, path, points) to a subscriber in another DDS participant.
2. End-to-end latency: ``sfm_node`` runs as its own process; this process publishes a frame, waits for
   its depth (matched by stamp), then publishes the next (closed loop, so no queueing), and reports
   publish -> depth received, next to the node's own inference time from /diagnostics (metric off).
3. Rate: a camera streaming at ``--rate`` Hz into the node with the metric branch off, then on: depth and
   metric_depth output rates, DRO and metric latency, drops, and the scale regime reached.

Not a test: the numbers depend on the machine (and its load), which is printed first.
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from typing import Dict, List, Optional

import numpy as np

__all__ = ['main', 'measure_overhead', 'measure_latency']


def _pct(values: List[float]) -> str:
    if not values:
        return '      n/a          n/a'
    a = np.asarray(values)
    return f'{np.percentile(a, 50):9.2f}  {np.percentile(a, 95):11.2f}'


def _frames(n: int, height: int, width: int):
    from dro_depth.data.synthetic import generate_sequence
    seq = generate_sequence('indoor', seed=7, n_frames=n, height=height, width=width)
    return seq.images, seq.K


def measure_overhead(frames: int, height: int, width: int) -> Dict[str, List[float]]:
    """Milliseconds per stage of the node's own work for ``frames`` frames of ``width`` x ``height``."""
    import rclpy

    from dro_depth.sfm.estimator import FrameResult, TrackingState
    from dro_depth.ros.testing.client import SfmClient
    from .conversions import camera_from_info, image_to_rgb
    from .frames import TfBridge
    from .outputs import OutputPublisher
    from .params import defaults
    from dro_depth.ros.testing.player import camera_messages

    images, K = _frames(min(frames, 10), height, width)
    values = defaults()
    values.update(publish_points=True, points_decimation=4, points_allow_unscaled=True, publish_tf=False)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node('bench_outputs', context=ctx, namespace='/bench')
    client = SfmClient(node_name='/bench/bench_outputs', namespace='/bench', client_name='bench_subscriber')
    names = ('decode rgb8', 'decode bgr8', 'camera model', 'publish all', 'node total')
    stages: Dict[str, List[float]] = {k: [] for k in names}
    try:
        outputs = OutputPublisher(node, values, TfBridge(node, publish=False))
        client.outputs.wait(lambda o: all(o.subscriptions[n].get_publisher_count() > 0 for n in
                                          ('depth', 'points', 'odom')), 10)
        from dro_depth.ros.testing.player import wait_for
        wait_for(lambda: min(outputs.depth.get_subscription_count(),
                             outputs.points.get_subscription_count()) > 0, 10)
        rng = np.random.default_rng(0)
        depth = rng.uniform(0.5, 10.0, (height, width)).astype(np.float32)
        depth[::7, ::5] = np.nan
        conf = rng.uniform(0, 1, (height, width)).astype(np.float32)
        for i in range(frames):
            rgb = images[i % len(images)]
            stamp = 1_000_000_000 + i * 50_000_000
            image, info = camera_messages(rgb, K, stamp)
            bgr_image, _ = camera_messages(rgb, K, stamp, encoding='bgr8')
            t0 = time.perf_counter()
            decoded = image_to_rgb(image)
            t1 = time.perf_counter()
            image_to_rgb(bgr_image)
            t2 = time.perf_counter()
            camera = camera_from_info(info, width, height)
            t3 = time.perf_counter()
            T = np.eye(4)
            T[2, 3] = 0.05 * i
            result = FrameResult(stamp=stamp * 1e-9, depth=depth, confidence=conf, T_world_cam=T,
                                 covariance=np.eye(6) * 1e-4 * (i + 1), state=TrackingState.TRACKING,
                                 camera=camera)
            t4 = time.perf_counter()
            outputs.publish(result, image, info, decoded)
            t5 = time.perf_counter()
            stages['decode rgb8'].append((t1 - t0) * 1e3)
            stages['decode bgr8'].append((t2 - t1) * 1e3)
            stages['camera model'].append((t3 - t2) * 1e3)
            stages['publish all'].append((t5 - t4) * 1e3)
            stages['node total'].append((t1 - t0 + t3 - t2 + t5 - t4) * 1e3)
        client.outputs.wait(lambda o: o.count('depth') >= frames, 10)
        stages['_received'] = [float(client.outputs.count('depth'))]
    finally:
        client.close()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
    return stages


def measure_latency(frames: int, height: int, width: int, net_width: int, net_height: int, iterations: int,
                    cpu_threads: int, timeout: float = 120.0) -> Dict[str, List[float]]:
    """Publish -> depth received (ms) through a separate sfm_node process, one frame in flight at a time."""
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.testing.process import NodeProcess

    images, K = _frames(min(frames, 20), height, width)
    params = {'device': 'cpu', 'cpu_threads': cpu_threads, 'width': net_width, 'height': net_height,
              'iterations': iterations, 'num_refs': 1, 'diagnostics_period': 0.5, 'publish_points': False,
              'metric.enabled': False}
    proc = NodeProcess(params).start()
    client = SfmClient(topics=['depth', '/diagnostics'])
    out: Dict[str, List[float]] = {'publish -> depth received': [], 'node inference': [], 'node overhead': []}
    try:
        if not client.wait_for_node(timeout):
            raise RuntimeError('sfm_node did not start:\n' + proc.log()[-2000:])
        # Warm-up (not measured): until the first depth arrives. The very first samples can be lost while
        # the subscription side of discovery completes, so keep offering frames.
        i = 0
        deadline = time.monotonic() + timeout
        while client.outputs.count('depth') == 0 and time.monotonic() < deadline:
            client.camera.publish(images[i % len(images)], K, time.time_ns())
            i += 1
            client.outputs.wait(lambda o: o.count('depth') > 0, 1.0)
        if client.outputs.count('depth') == 0:
            raise RuntimeError('no depth from sfm_node:\n' + proc.log()[-2000:])
        lost = 0
        for j in range(frames):
            stamp = time.time_ns()
            t0 = time.monotonic()
            client.camera.publish(images[(i + j) % len(images)], K, stamp)
            if not client.outputs.wait(lambda o: stamp in o.by_stamp('depth'), 30.0):
                lost += 1
                continue
            out['publish -> depth received'].append((client.outputs.by_stamp('depth')[stamp].t - t0) * 1e3)
        out['_lost'] = [float(lost)]
        n_depth = client.outputs.count('depth')
        d = client.wait_diagnostics(lambda v: int(v.get('published', 0)) >= n_depth, 10)
        out['node inference'] = [float(d['inference_p50_ms']), float(d['inference_p95_ms'])]
        out['node overhead'] = [float(d['publish_p50_ms']), float(d['publish_p95_ms'])]
        out['_diag'] = d
    finally:
        client.close()
        proc.stop(signal.SIGINT)
    return out


def _engines_ready(v: Dict[str, str], metric: bool) -> bool:
    """The node's compiled engines serve (DRO: nothing left compiling; metric: not torch, unless asked)."""
    if not v:
        return False
    dro = v.get('dro_engines_compiling', '0') == '0'
    met = (not metric or v.get('metric_engine', 'torch') != 'torch' or bool(v.get('metric_backend_fallback'))
           or v.get('metric_backend_requested') == 'torch')
    return dro and met


def measure_rate(seconds: float, rate: float, height: int, width: int, net_width: int, net_height: int,
                 iterations: int, cpu_threads: int, metric: bool, metric_rate: int,
                 timeout: float = 120.0, backend: str = 'auto', precision: str = 'fp32',
                 metric_backend: str = 'auto', metric_precision: str = 'fp32') -> Dict[str, str]:
    """Stream at ``rate`` Hz for ``seconds`` into a separate sfm_node; its diagnostics at the end."""
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.testing.process import NodeProcess

    images, K = _frames(40, height, width)
    params = {'device': 'cpu', 'cpu_threads': cpu_threads, 'width': net_width, 'height': net_height,
              'iterations': iterations, 'num_refs': 2, 'diagnostics_period': 0.5, 'publish_points': False,
              'metric.enabled': metric, 'metric.rate': metric_rate, 'backend': backend,
              'precision': precision, 'metric.backend': metric_backend, 'metric.precision': metric_precision}
    proc = NodeProcess(params).start()
    client = SfmClient(topics=['depth', 'metric_depth', '/diagnostics'])
    try:
        if not client.wait_for_node(timeout):
            raise RuntimeError('sfm_node did not start:\n' + proc.log()[-2000:])
        i = 0
        deadline = time.monotonic() + timeout
        while client.outputs.count('depth') == 0 and time.monotonic() < deadline:   # warm-up
            client.camera.publish(images[i % len(images)], K, time.time_ns())
            i += 1
            client.outputs.wait(lambda o: o.count('depth') > 0, 0.2)
        t_warm = time.monotonic()
        while not _engines_ready(client.diagnostics(), metric) and time.monotonic() - t_warm < 300:
            client.camera.publish(images[i % len(images)], K, time.time_ns())   # metric compiles on keyframes
            i += 1
            time.sleep(0.1)
        for _ in range(int(rate)):                     # one second at the rate before counting
            client.camera.publish(images[i % len(images)], K, time.time_ns())
            i += 1
            time.sleep(1.0 / rate)
        n0, m0 = client.outputs.count('depth'), client.outputs.count('metric_depth')
        d0 = dict(client.diagnostics())
        t_start = time.monotonic()
        t_next = t_start
        while time.monotonic() - t_start < seconds:
            client.camera.publish(images[i % len(images)], K, time.time_ns())
            i += 1
            t_next += 1.0 / rate
            time.sleep(max(0.0, t_next - time.monotonic()))
        elapsed = time.monotonic() - t_start
        client.outputs.wait(lambda o: False, 1.0)              # let the last outputs arrive
        d = dict(client.wait_diagnostics(lambda v: True, 10))
        d['_depth_hz'] = f'{(client.outputs.count("depth") - n0) / elapsed:.2f}'
        d['_metric_hz'] = f'{(client.outputs.count("metric_depth") - m0) / elapsed:.2f}'
        before, after = (int(float(x.get('dropped_total', 0) or 0)) for x in (d0, d))
        d['_dropped'] = str(after - before)
    finally:
        client.close()
        proc.stop(signal.SIGINT)
    return d


def _latency_section(args, height: int, width: int) -> None:
    print()
    lat = measure_latency(args.frames, height, width, args.width, args.height, args.iterations,
                          args.cpu_threads)
    print(f'## 2. end to end, separate sfm_node process (network {args.width}x{args.height}, '
          f'{args.iterations} iterations, cpu_threads {args.cpu_threads}, one frame in flight)')
    lost = int(lat['_lost'][0])
    if lost:
        print(f'({lost} of {args.frames} frames got no depth within 30 s)')
    print(f'{"measure":<28}{"p50 ms":>9}  {"p95 ms":>11}')
    print(f'{"publish -> depth received":<28}{_pct(lat["publish -> depth received"])}')
    inf = lat['node inference']
    ovh = lat['node overhead']
    print(f'{"node: estimator.track()":<28}{inf[0]:9.2f}  {inf[1]:11.2f}')
    print(f'{"node: publish all outputs":<28}{ovh[0]:9.2f}  {ovh[1]:11.2f}')
    p50 = float(np.percentile(lat['publish -> depth received'], 50))
    print(f'{"rest (transport, decode)":<28}{p50 - inf[0] - ovh[0]:9.2f}  {"(p50 difference)":>11}')


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m dro_depth.ros.bench',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=30, help='frames per measurement')
    parser.add_argument('--input', default='640x480', help='input image WIDTHxHEIGHT')
    parser.add_argument('--width', type=int, default=128, help='network width')
    parser.add_argument('--height', type=int, default=96, help='network height')
    parser.add_argument('--iterations', type=int, default=4, help='DRO iterations (the node default)')
    parser.add_argument('--cpu-threads', type=int, default=1)
    parser.add_argument('--skip-latency', action='store_true')
    parser.add_argument('--skip-rate', action='store_true')
    parser.add_argument('--rate', type=float, nargs='+', default=[15.0, 30.0],
                        help='camera rates (Hz) of the streaming runs')
    parser.add_argument('--backend', default='auto',
                        help="DRO backend ('auto' = OpenVINO on CPU when installed)")
    parser.add_argument('--precision', default='fp32', help='DRO precision')
    parser.add_argument('--metric-backend', default='auto')
    parser.add_argument('--metric-precision', default='fp32')
    parser.add_argument('--metric-only', action='store_true',
                        help='streaming runs with the metric branch on only')
    parser.add_argument('--seconds', type=float, default=20.0, help='length of each streaming run')
    parser.add_argument('--metric-rate', type=int, default=0, help='metric.rate of the streaming run')
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.input.lower().split('x'))

    from .transport import ensure_fastdds_profile
    ensure_fastdds_profile()
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    import torch
    cpu = platform.processor() or platform.machine()
    print(f'# machine: {cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, '
          f'torch {torch.__version__}, python {sys.version.split()[0]}')
    profile = os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE', '-')
    print(f'# input {width}x{height}; Fast DDS profile {profile}')
    print()
    stages = measure_overhead(args.frames, height, width)
    received = int(stages.pop('_received')[0])
    print(f'## 1. node overhead beyond the estimator ({args.frames} frames, '
          f'{received} depth messages received)')
    print(f'{"stage":<28}{"p50 ms":>9}  {"p95 ms":>11}')
    for name, values in stages.items():
        print(f'{name:<28}{_pct(values)}')
    print('(publish all = depth, depth/camera_info, confidence, pose, odom, path, points at decimation 4)')
    if not args.skip_latency:
        _latency_section(args, height, width)
    if args.skip_rate:
        return 0
    print()
    print(f'## 3. streaming for {args.seconds:g} s each, metric branch off and on '
          f'(metric.rate {args.metric_rate or "keyframes"}, bundled light model; 2 references; DRO backend '
          f'{args.backend} {args.precision}, metric backend {args.metric_backend} {args.metric_precision}; '
          'timed after the engines serve)')
    cols = ['camera Hz', 'metric', 'DRO engine', 'metric engine', 'depth Hz', 'metric_depth Hz', 'DRO p50 ms',
            'metric p50 ms', 'latency p50 ms', 'latency p95 ms', 'dropped', 'scale regime', 'scale']
    print('| ' + ' | '.join(cols) + ' |')
    print('|' + '|'.join('---' for _ in cols) + '|')
    runs = [(r, m) for r in args.rate for m in ((True,) if args.metric_only else (False, True))]
    for rate, metric in runs:
        d = measure_rate(args.seconds, rate, height, width, args.width, args.height, args.iterations,
                         args.cpu_threads, metric, args.metric_rate, backend=args.backend,
                         precision=args.precision, metric_backend=args.metric_backend,
                         metric_precision=args.metric_precision)
        row = [f'{rate:g}', 'on' if metric else 'off', d.get('dro_engine', '-'),
               d.get('metric_engine', '-') if metric else '-', d['_depth_hz'], d['_metric_hz'],
               d.get('inference_p50_ms', '-'), d.get('metric_latency_p50_ms', '-'),
               d.get('latency_p50_ms', '-'), d.get('latency_p95_ms', '-'), d['_dropped'], d.get('scale_regime', '-'), d.get('scale', '-')]
        print('| ' + ' | '.join(str(v) for v in row) + ' |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
