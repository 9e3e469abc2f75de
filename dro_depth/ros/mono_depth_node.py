"""``mono_depth_node``: one camera in; Depth Anything V2 single-image depth out (no tracking, no odometry).

Subscribes (remappable):  image (sensor_msgs/Image), camera_info (sensor_msgs/CameraInfo)
Publishes:                metric checkpoints: depth (32FC1 metres, REP 118), depth/camera_info, points
                          (filtered, decimated), relative_depth (1 / depth);
                          relative checkpoints: relative_depth only (32FC1 affine-invariant inverse depth,
                          larger = nearer, unknown scale and shift: NOT metres; no ``depth`` topic exists);
                          /diagnostics
Parameters:               see :mod:`dro_depth.ros.mono_params` and config/mono_depth.yaml

The same rules as ``sfm_node``: inputs with sensor-data QoS paired with their CameraInfo
(:class:`~dro_depth.ros.pairing.CameraPairing`); cheap checks (encoding, size, CameraInfo) on the executor
thread; the newest frame waits in a single-slot mailbox for one inference thread (a replaced frame is an
``overload`` drop); every output carries the input stamp, and duplicate / stale stamps follow the one rule of
:mod:`dro_depth.sfm.stamps`; all outputs of a frame are published or none; every drop is counted per reason
in /diagnostics and logged throttled.

    ros2 run dro_depth mono_depth_node --ros-args -r image:=/camera/image_rect \
        -r camera_info:=/camera/camera_info -p checkpoint:=depth_anything_v2_metric_hypersim_vits.pth
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from dro_depth.errors import DroDepthError
from dro_depth.geometry.cloud import CloudFilter, filter_points
from dro_depth.sfm.stamps import DuplicateStampError, StampOrder
from .conversions import (COLOR_ENCODINGS, camera_from_info, camera_info_for, check_image, float_to_image,
                          image_to_rgb, points_to_pointcloud2, stamp_to_ns, stamp_to_sec)
from .diagnostics import LOG_THROTTLE_S, DiagnosticsReporter
from .failures import report_bad_input, report_internal_error
from .memory import MallocTuning
from .mono_params import MONO_DYNAMIC, MONO_NAMES, ParameterError, declare_mono_parameters, parse_hooks, \
    validate_mono, validate_mono_all
from .node_main import run_node
from .params import parameter_updates
from .pairing import CameraPairing
from .qos import describe_qos, diagnostics_qos, input_qos, output_qos
from .stats import NodeStats
from .timeline import Timeline
from .worker import InferenceWorker

if TYPE_CHECKING:
    from dro_depth.geometry.camera import PinholeCamera
    from dro_depth.mono import MonoDepthEstimator, MonoPrediction

__all__ = ['MonoDepthNode', 'MonoFrame', 'main']

_NO_GAP = 2 ** 62          # single images: a long gap restarts nothing


@dataclass
class MonoFrame:
    """A paired input that passed the cheap checks."""

    image: Image
    info: CameraInfo
    camera: 'PinholeCamera'     # from the CameraInfo, at the image's size
    received: float             # time.monotonic() when the pair was complete
    timeline: int = 0           # the ROS timeline it arrived in (ros.timeline: backward jumps of ROS time)


class MonoDepthNode(Node):
    """The ROS 2 skin around :class:`~dro_depth.mono.MonoDepthEstimator`.

    Args:
        estimator: an already built estimator (tests, embedding); built from the parameters otherwise.
        **kwargs: passed to :class:`rclpy.node.Node`.

    Raises:
        ParameterError / ConfigError: invalid parameters or a checkpoint of the wrong kind.
        CheckpointError / FileNotFoundError: unusable weights.
    """

    def __init__(self, estimator: Optional['MonoDepthEstimator'] = None, node_name: str = 'mono_depth_node',
                 **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.values: Dict[str, Any] = declare_mono_parameters(self)
        self.stats = NodeStats()
        self.malloc = MallocTuning.from_parameters(self.values)
        self.get_logger().info(f'memory: {self.malloc.apply()}')
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._stamps = StampOrder(_NO_GAP)      # a stamp is published once per ROS timeline (sfm.stamps)
        self._timeline = 0
        self._warned_frame = False
        self._last_network_size = (0, 0)
        self.estimator = estimator if estimator is not None else self._build_estimator()
        self.metric = bool(self.estimator.metric)
        self._create_publishers()
        ok = 'publishing depth' if self.metric else 'publishing relative_depth'
        self._reporter = DiagnosticsReporter(f'{self.get_name()}: single-image depth',
                                             str(self.estimator.device), ok_message=ok)
        self.worker: InferenceWorker[MonoFrame] = InferenceWorker(
            self._process, on_drop=self._on_overload, name='mono-inference', on_error=self._on_internal_error,
            after=self._after_frame)
        self.worker.start()
        self.add_on_set_parameters_callback(self._check_parameters)
        self.timeline = Timeline(self)
        self.add_post_set_parameters_callback(self._apply_parameters)
        qos = input_qos(self.values['image_qos_reliability'], self.values['image_qos_depth'])
        self.pairing = CameraPairing(
            self, qos, self._on_pair, on_image=lambda msg: self.stats.image_received(),
            on_info=lambda msg: self.stats.camera_info_received(), on_unpaired=self._on_unpaired,
            mode=self.values['camera_info_mode'], queue_size=self.values['pairing_queue_size'])
        self._diag_timer = self.create_timer(self.values['diagnostics_period'], self.publish_diagnostics,
                                             clock=self._steady)
        topics = f'{self.resolve_topic_name("image")} + {self.resolve_topic_name("camera_info")}'
        self.get_logger().info(f'listening on {topics} ({describe_qos(qos)}, CameraInfo pairing: '
                               f'{self.pairing.backend})')

    def _build_estimator(self) -> 'MonoDepthEstimator':
        from dro_depth.device import resolve_device
        from dro_depth.mono import MonoDepthEstimator
        from dro_depth.mono.checkpoint import open_mono_checkpoint
        v = self.values
        if v['cpu_threads'] > 0:
            import torch
            torch.set_num_threads(v['cpu_threads'])
        device = resolve_device(v['device'])
        ckpt, model = open_mono_checkpoint(v['checkpoint'], kind=v['kind'], encoder=v['encoder'],
                                           max_depth=v['metric_max_depth'], depth=v['model_depth'],
                                           hooks=parse_hooks(v['hooks']), device=device)
        config = ckpt.config(input_size=v['input_size'], precision=v['precision'], device=str(device),
                             backend=v['backend'], threads=v['backend_threads'],
                             engine_cache=v['engine_cache'] or None)
        self.get_logger().info(f'{ckpt.describe()}; on {device} ({v["precision"]}), input size '
                               f'{v["input_size"]}, backend {v["backend"]}')
        if not ckpt.metric:
            self.get_logger().info('relative checkpoint: publishing relative_depth only (affine-invariant '
                                   'inverse depth, no metres); no depth, depth/camera_info or points')
        return MonoDepthEstimator(config, model=model)

    def _create_publishers(self) -> None:
        out = output_qos(self.values['output_qos_depth'])
        self._pub_relative = self.create_publisher(Image, 'relative_depth', out)
        self._pub_depth = self._pub_info = self._pub_points = None
        if self.metric:                 # relative depth is never published on a topic named depth
            self._pub_depth = self.create_publisher(Image, 'depth', out)
            self._pub_info = self.create_publisher(CameraInfo, 'depth/camera_info', out)
            self._pub_points = self.create_publisher(PointCloud2, 'points', out)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', diagnostics_qos())

    # ------------------------------------------------------------------ executor thread
    def _on_pair(self, image: Image, info: CameraInfo) -> None:
        self.stats.pair()
        if image.encoding.lower() not in COLOR_ENCODINGS:
            self._bad('bad_encoding', f'encoding {image.encoding!r} is not one of '
                                      f'{", ".join(COLOR_ENCODINGS)}')
            return
        pixels = int(image.width) * int(image.height)
        if pixels > self.values['max_input_pixels']:
            self._bad('too_large', f'image is {image.width}x{image.height} = {pixels} pixels, above '
                                   f'max_input_pixels {self.values["max_input_pixels"]} (dropped before any '
                                   'copy)')
            return
        try:        # here, so that no malformed image or bad CameraInfo is hidden by an overload drop
            check_image(image)                   # size, step, data length; no pixel is read
            camera = camera_from_info(info, int(image.width), int(image.height),
                                      rectified=self.values['input_rectified'])
        except DroDepthError as exc:
            self._bad('bad_input', f'{type(exc).__name__}: {exc}')
            return
        self.worker.submit(MonoFrame(image, info, camera, time.monotonic(), self.timeline.current()))
        self.stats.queue_depth(self.worker.waiting())

    def _on_overload(self, frame: MonoFrame) -> None:
        self.stats.drop('overload', 'a newer frame arrived before inference finished (the newest is kept)')

    def _on_unpaired(self, image: Image, reason: str) -> None:
        self._bad('unpaired', f'image at {stamp_to_sec(image.header.stamp):.6f} s: {reason} (camera_info '
                              f'topic {self.resolve_topic_name("camera_info")})')

    def _check_parameters(self, params: List[Any]) -> SetParametersResult:
        """Validate a change (no side effects): read-only names, each value, and the rules between them."""
        updates, reason = parameter_updates(params, MONO_NAMES, MONO_DYNAMIC, validate_mono)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        try:
            validate_mono_all({**self.values, **updates})
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: List[Any]) -> None:
        """Apply a change that passed :meth:`_check_parameters` (read by the worker on its next frame)."""
        updates = {p.name: p.value for p in params if p.name in MONO_NAMES}
        self.values.update(updates)
        if updates:
            self.get_logger().info('parameters changed: ' + ', '.join(f'{k}={v}' for k, v in updates.items()))

    def publish_diagnostics(self) -> None:
        status = self._reporter.status(self.stats.snapshot(), self.diagnostics_info())
        self._diag_pub.publish(self._reporter.array(status, self.get_clock().now().to_msg()))

    def diagnostics_info(self) -> Dict[str, Any]:
        est = self.estimator
        cfg = est.config
        info: Dict[str, Any] = {
            'queue_depth': self.worker.waiting(),
            'in_inference': self.worker.queue_depth() - self.worker.waiting(),
            'pending_unpaired': self.pairing.pending_unpaired(),
            'camera_info_age_s': self.pairing.seconds_since_camera_info(),
            'worker_alive': self.worker.alive,
            'device': str(est.device), 'precision': cfg.precision, 'backend': cfg.backend,
            'checkpoint': str(cfg.checkpoint), 'encoder': cfg.encoder,
            'output': 'metric depth' if self.metric else
                      'relative_depth only (affine-invariant inverse depth)',
            'metric_max_depth_m': float(cfg.max_depth) if self.metric else float('nan'),
            'input_size': cfg.input_size,
            'network_size': f'{self._last_network_size[1]}x{self._last_network_size[0]}',
            'flip_confidence': self._want_confidence(),
        }
        info.update(self.malloc.diagnostics())
        engines = list(est.engines.values())
        if engines:
            engine_info = getattr(engines[-1], 'info', None)
            info['backend_running'] = getattr(engine_info, 'backend', 'unknown')
            info['backend_fallback'] = getattr(engine_info, 'fallback_reason', '')
        return info

    # ------------------------------------------------------------------ worker thread
    def _process(self, frame: MonoFrame) -> None:
        stamp_ns = stamp_to_ns(frame.image.header.stamp)
        if frame.timeline != self._timeline:    # ROS time jumped back (a looped bag): stamps may repeat
            self._timeline = frame.timeline
            self._stamps.new_timeline()
        try:
            self._stamps.check(stamp_ns)         # a stamp already published raises DuplicateStampError
            rgb = image_to_rgb(frame.image)
            if rgb.ndim == 2:                    # mono8: the network takes three equal channels
                rgb = np.repeat(rgb[:, :, None], 3, axis=2)
            t0 = time.perf_counter()
            pred = self.estimator.predict(rgb)
            confidence = self._confidence(rgb, pred)
            inference_ms = (time.perf_counter() - t0) * 1e3
        except DuplicateStampError as exc:       # the one duplicate / stale rule (dro_depth.sfm.stamps)
            self._bad('duplicate_stamp', str(exc))
            return
        except DroDepthError as exc:             # bad input; anything else is a bug (_on_internal_error)
            self._bad('bad_input', f'{type(exc).__name__}: {exc}')
            return
        self._stamps.accept(stamp_ns)
        self._last_network_size = pred.network_size
        if self.worker.stopping:
            self.stats.frame_processed(inference_ms)
            return
        t1 = time.perf_counter()
        messages = self._messages(frame, pred, rgb, confidence)     # all built before any is sent
        for publisher, msg in messages:
            publisher.publish(msg)
        publish_ms = (time.perf_counter() - t1) * 1e3
        self.stats.frame_processed(inference_ms)
        now_ns = self.get_clock().now().nanoseconds
        self.stats.frame_published((time.monotonic() - frame.received) * 1e3, (now_ns - stamp_ns) * 1e-6,
                                   publish_ms)

    def _want_confidence(self) -> bool:
        return self.metric and self.values['publish_points'] and self.values['points_min_confidence'] > 0

    def _confidence(self, rgb: np.ndarray, pred: 'MonoPrediction') -> Optional[np.ndarray]:
        """Flip-consistency confidence for the cloud, only when it is asked for and someone listens."""
        if not self._want_confidence() or self._pub_points.get_subscription_count() == 0:
            return None
        from dro_depth.mono.confidence import flip_consistency, mirrored_depth
        return flip_consistency(pred.depth, mirrored_depth(self.estimator, rgb))

    def _messages(self, frame: MonoFrame, pred: 'MonoPrediction', rgb: np.ndarray,
                  confidence: Optional[np.ndarray]) -> List[tuple]:
        values = self.values
        header = Header(stamp=frame.image.header.stamp, frame_id=self._camera_frame(frame.image.header))
        if pred.depth is None:
            return [(self._pub_relative, float_to_image(pred.relative, header))]
        with np.errstate(invalid='ignore', divide='ignore'):
            depth = np.where((pred.depth > values['min_depth']) & (pred.depth < values['max_depth']),
                             pred.depth, np.float32(np.nan)).astype(np.float32)
            out = [(self._pub_depth, float_to_image(depth, header)),
                   (self._pub_info, camera_info_for(frame.info, header, depth.shape[1], depth.shape[0]))]
            if values['publish_relative_depth']:
                out.append((self._pub_relative, float_to_image(1.0 / pred.depth, header)))
        if values['publish_points'] and self._pub_points.get_subscription_count() > 0:
            try:
                cfg = CloudFilter.from_values(values)
            except DroDepthError as exc:
                self.get_logger().warning(f'points not published: {exc}',
                                          throttle_duration_sec=LOG_THROTTLE_S)
                return out
            points = filter_points(depth, frame.camera.K, cfg, confidence)
            out.append((self._pub_points, points_to_pointcloud2(points, rgb, header)))
        return out

    def _camera_frame(self, image_header: Header) -> str:
        frame = self.values['camera_frame'] or image_header.frame_id
        if not frame:
            frame = 'camera_optical_frame'
            if not self._warned_frame:
                self.get_logger().warning('input images have no header.frame_id and parameter camera_frame '
                                          f"is empty: publishing in '{frame}'")
                self._warned_frame = True
        return frame

    def _after_frame(self, frame: MonoFrame) -> None:
        """Freed buffers of a large frame (or a period's worth) go back to the OS, whatever became of it."""
        self.malloc.after_frame(int(frame.image.width) * int(frame.image.height))

    def _on_internal_error(self, frame: MonoFrame, exc: BaseException) -> None:
        """A bug while processing ``frame`` (not bad input): counted, logged throttled with its traceback."""
        report_internal_error(self, self.stats, self.worker.stopping, stamp_to_ns(frame.image.header.stamp),
                              exc)

    def _bad(self, reason: str, detail: str) -> None:
        report_bad_input(self, self.stats, reason, detail)

    # ------------------------------------------------------------------ shutdown
    def destroy_node(self) -> None:
        if not self.worker.stop(10.0):
            self.get_logger().warning('inference thread did not stop within 10 s')
        self.timeline.close()
        self.pairing.destroy()
        super().destroy_node()


def main(args: Optional[List[str]] = None) -> int:
    """Run until SIGINT / SIGTERM; exit code 0 on a clean shutdown, 2 on invalid parameters or weights."""
    return run_node(MonoDepthNode, 'mono_depth_node', args)


if __name__ == '__main__':
    sys.exit(main())
