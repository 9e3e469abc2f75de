"""``stereo_node``: rectified left/right images + camera_infos in; disparity, metric depth, points out.

Subscribes (remappable):  left/image_rect, left/camera_info, right/image_rect, right/camera_info
Publishes:                disparity (stereo_msgs/DisparityImage), depth (32FC1 metres, REP 118, left optical
                          frame), depth/camera_info, points (decimated, optional), /diagnostics
Parameters:               see :mod:`dro_depth.ros.stereo_params` and config/stereo.yaml

All four inputs are paired by exact stamp; the baseline comes from the right projection matrix
(``P[0,3] = -fx * B``). The executor thread pairs and drops the newest quad into a one-slot mailbox; a
worker thread runs :class:`~dro_depth.stereo.StereoEstimator` and publishes. Bad input (sizes, encodings,
frames, unrectified or non-horizontal calibration, baseline <= 0, stamps that never match) is logged
(throttled) and counted per reason in /diagnostics; the node keeps running.

    ros2 run dro_depth stereo_node --ros-args -r left/image_rect:=/cam/left/image_rect ... \
        --params-file config/stereo.yaml
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, RegionOfInterest
from stereo_msgs.msg import DisparityImage

from dro_depth.errors import DroDepthError
from dro_depth.geometry.cloud import CloudFilter, filter_points
from .conversions import (COLOR_ENCODINGS, float_to_image, image_to_rgb, points_to_pointcloud2, stamp_to_ns,
                          stamp_to_sec)
from .diagnostics import LOG_THROTTLE_S, DiagnosticsReporter
from .failures import report_bad_input, report_internal_error
from .memory import MallocTuning
from .qos import describe_qos, diagnostics_qos, input_qos, output_qos
from .params import parameter_updates
from .stats import NodeStats
from .stereo_pairing import StereoPairer
from .stereo_params import (STEREO_DYNAMIC, STEREO_NAMES, declare_stereo_parameters, stereo_config,
                             validate_stereo)
from .node_main import run_node
from .worker import InferenceWorker

__all__ = ['StereoNode', 'StereoFrame', 'main']

STEREO_DROP_REASONS = ('bad_size', 'bad_encoding', 'bad_frame', 'bad_calibration', 'unpaired', 'overload',
                       'duplicate_stamp', 'bad_input', 'internal_error')


@dataclass
class StereoFrame:
    """Four messages with one stamp."""

    left: Image
    left_info: CameraInfo
    right: Image
    right_info: CameraInfo
    received: float
    calib: Any = None    # StereoCalibration, set once the pair passed the checks


def check_pair(f: StereoFrame) -> Optional[tuple]:
    """``(reason, detail)`` when the quad cannot be used as it is, else None (no calibration checks)."""
    if (f.left.width, f.left.height) != (f.right.width, f.right.height):
        return 'bad_size', f'left {f.left.width}x{f.left.height} vs right {f.right.width}x{f.right.height}'
    for side, img, info in (('left', f.left, f.left_info), ('right', f.right, f.right_info)):
        if (info.width, info.height) != (img.width, img.height):
            return 'bad_size', (f'{side} image {img.width}x{img.height} vs its camera_info '
                                f'{info.width}x{info.height}')
        if info.header.frame_id and img.header.frame_id and info.header.frame_id != img.header.frame_id:
            return 'bad_frame', (f'{side} image frame {img.header.frame_id!r} vs camera_info frame '
                                 f'{info.header.frame_id!r}')
    if f.left.encoding != f.right.encoding:
        return 'bad_encoding', f'left {f.left.encoding!r} vs right {f.right.encoding!r}'
    if f.left.encoding.lower() not in COLOR_ENCODINGS:
        return 'bad_encoding', f'{f.left.encoding!r} is not one of {", ".join(COLOR_ENCODINGS)}'
    if f.left.header.frame_id and f.left.header.frame_id == f.right.header.frame_id:
        return 'bad_frame', f'left and right images are both in frame {f.left.header.frame_id!r}'
    return None


class StereoNode(Node):
    """The ROS 2 skin around :class:`~dro_depth.stereo.StereoEstimator`.

    Args:
        estimator: an already built estimator (tests, embedding); built from the parameters otherwise.
        **kwargs: passed to :class:`rclpy.node.Node`.

    Raises:
        ParameterError: an invalid parameter. CheckpointError / FileNotFoundError: bad weights.
    """

    def __init__(self, estimator: Any = None, node_name: str = 'stereo_node', **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.values: Dict[str, Any] = declare_stereo_parameters(self)
        self.stats = NodeStats()
        self.malloc = MallocTuning.from_parameters(self.values)
        self.get_logger().info(f'memory: {self.malloc.apply()}')
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._last_stamp_ns: Optional[int] = None
        self._calib_cache: Dict[bytes, Any] = {}
        self.estimator = estimator if estimator is not None else self._build_estimator()
        out = output_qos()
        self._pub_disp = self.create_publisher(DisparityImage, 'disparity', out)
        self._pub_depth = self.create_publisher(Image, 'depth', out)
        self._pub_info = self.create_publisher(CameraInfo, 'depth/camera_info', out)
        self._pub_points = self.create_publisher(PointCloud2, 'points', out)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', diagnostics_qos())
        self._reporter = DiagnosticsReporter(f'{self.get_name()}: stereo depth', self.values['device'])
        self.worker: InferenceWorker[StereoFrame] = InferenceWorker(self._process, on_drop=self._on_overload,
                                                                    name='stereo-inference',
                                                                    on_error=self._on_internal_error,
                                                                    after=self._after_frame)
        self.worker.start()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pairer = StereoPairer(self.values['pairing_queue_size'], self._on_unpaired)
        self._subscribe()
        self._diag_timer = self.create_timer(self.values['diagnostics_period'], self.publish_diagnostics,
                                             clock=self._steady)

    def _build_estimator(self):
        from dro_depth.models.stereo import load_raft_stereo
        from dro_depth.stereo import StereoEstimator, default_stereo_weights
        if self.values['cpu_threads'] > 0:
            import torch
            torch.set_num_threads(self.values['cpu_threads'])
        path = self.values['checkpoint'] or default_stereo_weights()
        model = load_raft_stereo(path, device=self.values['device'])
        self.get_logger().info(f'RAFT-Stereo ({model.cfg.variant} layout) from {path} on '
                               f'{self.values["device"]}, '
                               f'{self.values["iterations"]} iterations, backend {self.values["backend"]}')
        return StereoEstimator(model, stereo_config(self.values))

    def _subscribe(self) -> None:
        qos = input_qos(self.values['image_qos_reliability'], self.values['image_qos_depth'])
        self._subs = []
        for side in ('left', 'right'):
            self._subs.append(self.create_subscription(
                Image, f'{side}/image_rect', lambda m, s=side: self._on_msg(s, 'image', m), qos))
            self._subs.append(self.create_subscription(
                CameraInfo, f'{side}/camera_info', lambda m, s=side: self._on_msg(s, 'info', m), qos))
        names = ', '.join(self.resolve_topic_name(f'{s}/{t}') for s in ('left', 'right')
                          for t in ('image_rect', 'camera_info'))
        self.get_logger().info(f'listening on {names} ({describe_qos(qos)}, exact-stamp pairing)')

    # ------------------------------------------------------------------ executor thread
    def _on_msg(self, side: str, kind: str, msg: Any) -> None:
        if kind == 'image' and side == 'left':
            self.stats.image_received()
        elif kind == 'info' and side == 'left':
            self.stats.camera_info_received()
        quad = self.pairer.add(side, kind, stamp_to_ns(msg.header.stamp), msg)
        if quad is None:
            return
        self.stats.pair()
        frame = StereoFrame(*quad, received=time.monotonic())
        problem = check_pair(frame)     # cheap checks here, so no bad pair is hidden by an overload drop
        if problem is None:
            try:
                frame.calib = self._calibration(frame)
            except DroDepthError as exc:
                problem = ('bad_calibration', f'{type(exc).__name__}: {exc}')
        if problem:
            self._bad(*problem)
            return
        self.worker.submit(frame)
        self.stats.queue_depth(self.worker.waiting())

    def _on_overload(self, frame: StereoFrame) -> None:
        self.stats.drop('overload',
                        'a newer stereo pair arrived before inference finished (the newest is kept)')

    def _on_unpaired(self, msg: Any, reason: str) -> None:
        self._bad('unpaired', f'stamp {stamp_to_sec(msg.header.stamp):.6f} s: {reason}')

    def _on_set_parameters(self, params: List[Any]) -> SetParametersResult:
        updates, reason = parameter_updates(params, STEREO_NAMES, STEREO_DYNAMIC, validate_stereo)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        if 'iterations' in updates:
            self.estimator.set_iterations(updates['iterations'])
        self.values.update(updates)
        if updates:
            self.get_logger().info('parameters changed: ' + ', '.join(f'{k}={v}' for k, v in updates.items()))
        return SetParametersResult(successful=True)

    def publish_diagnostics(self) -> None:
        status = self._reporter.status(self.stats.snapshot(), self.diagnostics_info())
        self._diag_pub.publish(self._reporter.array(status, self.get_clock().now().to_msg()))

    def diagnostics_info(self) -> Dict[str, Any]:
        drops = self.stats.snapshot()['drops']
        info: Dict[str, Any] = {f'dropped_{r}': int(drops.get(r, 0)) for r in STEREO_DROP_REASONS}
        info.update({'iterations': self.estimator.config.iterations, 'worker_alive': self.worker.alive,
                     'queue_depth': self.worker.waiting(), 'pending_unpaired': self.pairer.pending(),
                     'device': self.values['device'], 'backend': self.values['backend'],
                     'network': getattr(getattr(self.estimator.model, 'cfg', None), 'variant', 'unknown')})
        info.update(self.malloc.diagnostics())
        return info

    # ------------------------------------------------------------------ worker thread
    def _process(self, frame: StereoFrame) -> None:
        stamp_ns = stamp_to_ns(frame.left.header.stamp)
        if stamp_ns == self._last_stamp_ns:
            self._bad('duplicate_stamp', f'same stamp as the previous pair ({stamp_ns * 1e-9:.6f} s)')
            return
        calib = frame.calib
        try:
            left, right = image_to_rgb(frame.left), image_to_rgb(frame.right)
            result = self.estimator.estimate(left, right, calib)
        except DroDepthError as exc:       # bad input; anything else is a bug (_on_internal_error)
            self._bad('bad_input', f'{type(exc).__name__}: {exc}')
            return
        self._last_stamp_ns = stamp_ns
        self.stats.frame_processed(result.latency_ms)
        if self.worker.stopping:
            return
        t1 = time.perf_counter()
        self._publish(frame, calib, result, left)
        now_ns = self.get_clock().now().nanoseconds
        self.stats.frame_published((time.monotonic() - frame.received) * 1e3, (now_ns - stamp_ns) * 1e-6,
                                   (time.perf_counter() - t1) * 1e3)

    def _calibration(self, frame: StereoFrame):
        from dro_depth.stereo import StereoCalibration
        li, ri = frame.left_info, frame.right_info
        key = np.concatenate([li.p, ri.p, li.r, ri.r, [li.width, li.height]]).tobytes()
        if key not in self._calib_cache:
            self._calib_cache = {key: StereoCalibration.from_projections(
                li.p, ri.p, li.r, ri.r, int(li.width), int(li.height), self.values['check_rectified'])}
        return self._calib_cache[key]

    def _publish(self, frame: StereoFrame, calib: Any, result: Any, rgb: np.ndarray) -> None:
        header = frame.left.header
        valid = np.isfinite(result.disparity)
        msg = DisparityImage(header=header, image=float_to_image(result.disparity, header), f=calib.fx,
                             t=calib.baseline, delta_d=1.0 / 16,
                             valid_window=RegionOfInterest(x_offset=0, y_offset=0,
                                                           height=int(frame.left.height),
                                                           width=int(frame.left.width)))
        msg.min_disparity = float(self.values['min_disparity'])
        msg.max_disparity = float(np.max(result.disparity[valid])) if valid.any() else 0.0
        self._pub_disp.publish(msg)
        self._pub_depth.publish(float_to_image(result.depth, header))
        info = CameraInfo(header=header, width=frame.left_info.width, height=frame.left_info.height,
                          distortion_model=frame.left_info.distortion_model, d=frame.left_info.d,
                          k=frame.left_info.k, r=frame.left_info.r, p=frame.left_info.p)
        self._pub_info.publish(info)
        if self.values['publish_points']:
            try:                      # the one navigation filter (dro_depth.geometry.cloud); stereo is metric
                cfg = CloudFilter.from_values(self.values)
            except DroDepthError as exc:          # e.g. points_min_range >= points_max_range at run time
                self.get_logger().warning(f'points not published: {exc}',
                                          throttle_duration_sec=LOG_THROTTLE_S)
                return
            points = filter_points(result.depth, calib.K, cfg, getattr(result, 'confidence', None))
            self._pub_points.publish(points_to_pointcloud2(points, rgb, header))

    def _after_frame(self, frame: StereoFrame) -> None:
        """Freed buffers of a large frame (or a period's worth) go back to the OS, whatever became of it."""
        self.malloc.after_frame(int(frame.left.width) * int(frame.left.height))

    def _on_internal_error(self, frame: StereoFrame, exc: BaseException) -> None:
        """A bug while processing ``frame`` (not bad input): counted, logged throttled with its traceback."""
        report_internal_error(self, self.stats, self.worker.stopping, stamp_to_ns(frame.left.header.stamp),
                              exc)

    def _bad(self, reason: str, detail: str) -> None:
        report_bad_input(self, self.stats, reason, detail, what='stereo pair')

    # ------------------------------------------------------------------ shutdown
    def destroy_node(self) -> None:
        if not self.worker.stop(10.0):
            self.get_logger().warning('inference thread did not stop within 10 s')
        super().destroy_node()


def main(args: Optional[List[str]] = None) -> int:
    """Run until SIGINT / SIGTERM; exit code 0 on a clean shutdown, 2 on invalid parameters or weights."""
    return run_node(StereoNode, 'stereo_node', args)

if __name__ == '__main__':
    sys.exit(main())
