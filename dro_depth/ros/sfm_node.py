"""``sfm_node``: camera in; depth, confidence, pose, odometry, path, points, TF and diagnostics out.

Subscribes (remappable):  image (sensor_msgs/Image), camera_info (sensor_msgs/CameraInfo)
Publishes:                depth, depth/camera_info, confidence, pose, odom, path, points, /tf,
                          metric_depth, metric_depth/camera_info, /diagnostics
Parameters:               see :mod:`dro_depth.ros.params` and config/sfm.yaml

The executor thread only pairs messages and drops them into a single-slot mailbox; a worker thread
runs :class:`~dro_depth.sfm.estimator.SfmEstimator` on the newest frame and publishes (see
:mod:`dro_depth.ros.worker`). With ``metric.enabled``, a third thread runs the metric-depth model at a
lower rate and the outputs become metric once its scale is known (see :mod:`dro_depth.ros.metric`).
Bad input never stops the node: it is logged (throttled) and counted per reason in /diagnostics.

    ros2 run dro_depth sfm_node --ros-args -r image:=/camera/image_raw \
        -r camera_info:=/camera/camera_info --params-file config/sfm.yaml
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from dro_depth.errors import DroDepthError
from dro_depth.sfm.errors import DuplicateStampError
from .conversions import (COLOR_ENCODINGS, camera_from_info, check_image, image_to_rgb, stamp_to_ns,
                          stamp_to_sec)
from .diagnostics import LOG_THROTTLE_S, DiagnosticsReporter
from .failures import report_bad_input, report_internal_error
from .frames import TfBridge
from .memory import MallocTuning
from .metric import MetricBranch
from .outputs import OutputPublisher
from .pairing import CameraPairing
from .params import (DYNAMIC_PARAMETERS, PARAMETER_NAMES, declare_parameters, estimator_config,
                     parameter_updates, validate)
from .qos import describe_qos, diagnostics_qos, input_qos
from .stats import NodeStats
from .timeline import Timeline
from .node_main import run_node
from .worker import InferenceWorker

__all__ = ['SfmNode', 'main']



@dataclass
class Frame:
    """A paired input waiting for (or in) inference."""

    image: Image
    info: CameraInfo
    received: float      # time.monotonic() when the pair was complete
    camera: Any = None   # the validated camera of the image (checked before the mailbox)
    timeline: int = 0    # the ROS timeline it arrived in (Timeline: backward jumps of ROS time)


class SfmNode(Node):
    """The ROS 2 skin around :class:`~dro_depth.sfm.estimator.SfmEstimator`.

    Args:
        estimator: an already built estimator (tests, embedding); built from the parameters otherwise.
        metric_model: an already built :class:`~dro_depth.metric.depth_estimator.MetricDepthEstimator` (used when
            ``metric.enabled``); built from the ``metric.*`` parameters otherwise.
        **kwargs: passed to :class:`rclpy.node.Node` (``context``, ``cli_args``, ``parameter_overrides``).

    Raises:
        ParameterError: a parameter is invalid (the message says which and why).
    """

    def __init__(self, estimator: Any = None, node_name: str = 'sfm_node', metric_model: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        log = self.get_logger()
        self.values: Dict[str, Any] = declare_parameters(self)
        self.stats = NodeStats()
        self._settings_lock = threading.Lock()
        self._pending_num_refs: Optional[int] = None
        self._last_result: Any = None
        self._timeline = 0                  # the estimator's timeline (worker thread)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.malloc = MallocTuning.from_parameters(self.values)
        log.info(f'memory: {self.malloc.apply()}')

        if self.values['cpu_threads'] > 0:
            import torch
            torch.set_num_threads(self.values['cpu_threads'])
        if estimator is None:
            from dro_depth.sfm.estimator import SfmEstimator
            estimator = SfmEstimator(estimator_config(self.values))
        self.estimator = estimator
        cfg = estimator.config
        checkpoint = str(estimator.checkpoint) if getattr(estimator, 'checkpoint', None) else ''
        if getattr(estimator, 'untrained', False):
            log.warning('UNTRAINED: no checkpoint given and the package ships no default DRO model; the '
                        'network has random weights, so depth, confidence and odometry are MEANINGLESS. Set '
                        'parameter checkpoint to a trained model.')
        log.info(f'DRO on {estimator.device} ({estimator.precision}), network {cfg.width}x{cfg.height}, '
                 f'{estimator.iterations} iterations, {estimator.num_refs} references, checkpoint '
                 f'{checkpoint or "(none: untrained)"}')

        self.metric: Optional[MetricBranch] = None
        if self.values['metric.enabled']:
            self.metric = MetricBranch(self, self.values, metric_model)
            m = self.metric.model
            if m.backbone == 'depth_anything':
                log.info(f'metric depth: {m.summary()}')
            else:
                log.info(f'metric depth: {m.backbone} ZoeDepth {m.variant} on {m.device} '
                         f'({m.config.precision}), network {m.model.img_size[0]}x{m.model.img_size[1]}, '
                         f'domain {m.domain}, every '
                         f'{"keyframe" if self.metric.rate == 0 else f"{self.metric.rate}. frame"}; '
                         f'checkpoint {m.checkpoint}'
                         + (f' (trained on {m.trained_on})' if m.trained_on else ''))
        else:
            log.info('metric depth off (metric.enabled false): depth, pose and odom are in DRO units')
        self.tf = TfBridge(self, self.values['publish_tf'])
        self.outputs = OutputPublisher(self, self.values, self.tf)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', diagnostics_qos())
        self._reporter = DiagnosticsReporter(f'{self.get_name()}: depth and odometry', str(estimator.device))
        self.worker: InferenceWorker[Frame] = InferenceWorker(self._process, on_drop=self._on_overload,
                                                              on_error=self._on_internal_error,
                                                              after=self._after_frame)
        self.worker.start()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.timeline = Timeline(self)

        qos = input_qos(self.values['image_qos_reliability'], self.values['image_qos_depth'])
        self.pairing = CameraPairing(
            self, qos, self._on_pair, on_image=self._on_image,
            on_info=lambda msg: self.stats.camera_info_received(), on_unpaired=self._on_unpaired,
            mode=self.values['camera_info_mode'], queue_size=self.values['pairing_queue_size'])
        self._diag_timer = self.create_timer(self.values['diagnostics_period'], self.publish_diagnostics,
                                             clock=self._steady)
        topics = f'{self.resolve_topic_name("image")} + {self.resolve_topic_name("camera_info")}'
        log.info(f'listening on {topics} ({describe_qos(qos)}, CameraInfo pairing: {self.pairing.backend})')

    # ------------------------------------------------------------------ executor thread
    def _on_image(self, image: Image) -> None:
        self.stats.image_received()
        self.get_logger().debug(f'image {stamp_to_ns(image.header.stamp)} {image.width}x{image.height} '
                                f'{image.encoding}')

    def _on_pair(self, image: Image, info: CameraInfo) -> None:
        self.stats.pair()
        if image.encoding.lower() not in COLOR_ENCODINGS:
            self.stats.drop('bad_encoding', f'encoding {image.encoding!r} is not one of '
                                            f'{", ".join(COLOR_ENCODINGS)}')
            self.get_logger().error(f'skipping image with unsupported encoding {image.encoding!r}: accepted '
                                    f'are {", ".join(COLOR_ENCODINGS)} (counted in /diagnostics as '
                                    'bad_encoding)',
                                    throttle_duration_sec=LOG_THROTTLE_S)
            return
        pixels = int(image.width) * int(image.height)
        if pixels > self.values['max_input_pixels']:
            self._bad('too_large', f'image is {image.width}x{image.height} = {pixels} pixels, above '
                                   f'max_input_pixels {self.values["max_input_pixels"]} '
                                   '(dropped before any copy)')
            return
        camera = self._check_pair(image, info)
        if camera is None:
            return
        self.worker.submit(Frame(image, info, time.monotonic(), camera, self.timeline.current()))
        self.stats.queue_depth(self.worker.waiting())

    def _check_pair(self, image: Image, info: CameraInfo) -> Any:
        """The validated camera, or None once the pair is counted as refused: every check that needs no
        pixels runs here, before the mailbox, so a malformed frame is always counted as bad_input, however
        busy inference is (the mailbox would otherwise drop some of them as overload first). O(1)."""
        try:
            check_image(image)                          # size, step, data length (no pixel is read)
            camera = camera_from_info(info, int(image.width), int(image.height),
                                      rectified=self.values['input_rectified'])
            self.estimator.check_frame(camera.width, camera.height, camera.K)   # size limits, intrinsics
        except DroDepthError as exc:
            self._bad('bad_input', f'{type(exc).__name__}: {exc}')
            return None
        except Exception as exc:  # noqa: BLE001 - a bug here must not end the executor's spin
            self._on_internal_error(Frame(image, info, time.monotonic()), exc)
            return None
        return camera

    def _on_overload(self, frame: Frame) -> None:
        self.stats.drop('overload', 'a newer frame arrived before inference finished (the newest is kept)')

    def _on_unpaired(self, image: Image, reason: str) -> None:
        self.stats.drop('unpaired', reason)
        self.get_logger().warning(f'image at {stamp_to_sec(image.header.stamp):.6f} s skipped: {reason} '
                                  f'(camera_info topic {self.resolve_topic_name("camera_info")})',
                                  throttle_duration_sec=LOG_THROTTLE_S)

    def _on_set_parameters(self, params: List[Any]) -> SetParametersResult:
        updates, reason = parameter_updates(params, PARAMETER_NAMES, DYNAMIC_PARAMETERS, validate)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        if 'iterations' in updates:
            self.estimator.iterations = updates['iterations']     # read once per frame by the estimator
        if 'num_refs' in updates:
            with self._settings_lock:
                self._pending_num_refs = updates['num_refs']      # applied by the worker between frames
        if self.metric is not None:
            if 'metric.domain' in updates:
                self.metric.set_domain(updates['metric.domain'])
            if 'metric.rate' in updates:
                self.metric.rate = updates['metric.rate']
        self.values.update(updates)
        if updates:
            self.get_logger().info('parameters changed: ' + ', '.join(f'{k}={v}' for k, v in updates.items()))
        return SetParametersResult(successful=True)

    def publish_diagnostics(self) -> None:
        if self.pairing.backend.startswith('message_filters'):
            # message_filters drops unpaired images silently: take the count the pairing derives
            self.stats.set_drops('unpaired', self.pairing.unpaired(),
                                 'no CameraInfo with the same stamp arrived (message_filters queue)')
        snapshot = self.stats.snapshot()
        problems = self.metric.problems() if self.metric is not None else []
        status = self._reporter.status(snapshot, self.diagnostics_info(), problems)
        self._diag_pub.publish(self._reporter.array(status, self.get_clock().now().to_msg()))

    def diagnostics_info(self) -> Dict[str, Any]:
        est = self.estimator
        result = self._last_result
        info: Dict[str, Any] = {
            'queue_depth': self.worker.waiting(),                      # frames waiting: 0 or 1
            'in_inference': self.worker.queue_depth() - self.worker.waiting(),
            'pending_unpaired': self.pairing.pending_unpaired(),
            'camera_info_age_s': self.pairing.seconds_since_camera_info(),
            'device': str(est.device),
            'precision': est.precision,
            'network_size': f'{est.config.width}x{est.config.height}',
            'cpu_threads': _torch_threads(),
            'iterations': est.iterations,
            'num_refs': est.num_refs,
            'tracking_state': getattr(result.state, 'value', 'waiting') if result is not None else 'waiting',
            'tracking_reason': result.reason if result is not None else '',
            'iterations_last_frame': result.iterations if result is not None else 0,
            'refs_last_frame': result.num_refs if result is not None else 0,
            'untrained': bool(getattr(est, 'untrained', False)),
            'checkpoint': str(est.checkpoint) if getattr(est, 'checkpoint', None) else '',
            'pairing': self.pairing.backend,
            'path_length': self.outputs.path_length(),
            'worker_alive': self.worker.alive,
            'rss_mb': _rss_mb(),
            'timeline': self.timeline.current(),
            **self.malloc.diagnostics(),
        }
        if hasattr(est, 'diagnostics'):
            info.update(est.diagnostics())              # DRO engine: backend, compile times, fallback
        info.update(self.outputs.info())
        info['metric_enabled'] = self.metric is not None
        if self.metric is not None:
            info.update(self.metric.diagnostics())
        else:
            info['scale_regime'] = 'dro_units'
        return info

    # ------------------------------------------------------------------ worker thread
    def _process(self, frame: Frame) -> None:
        with self._settings_lock:
            num_refs, self._pending_num_refs = self._pending_num_refs, None
        if num_refs is not None:
            self.estimator.num_refs = num_refs
        if frame.timeline != self._timeline:       # ROS time jumped back: stamps may legitimately repeat
            self._timeline = frame.timeline
            self.estimator.new_timeline(f'ROS time jumped backwards (timeline {frame.timeline})')
        image, info = frame.image, frame.info
        stamp_ns = stamp_to_ns(image.header.stamp)
        try:
            rgb = image_to_rgb(image)
            t0 = time.perf_counter()
            result = self.estimator.track(rgb, frame.camera.K, stamp_ns=stamp_ns)
            inference_ms = (time.perf_counter() - t0) * 1e3
        except DuplicateStampError as exc:       # the estimator owns the one duplicate / stale rule
            self._bad('duplicate_stamp', str(exc))
            return
        except DroDepthError as exc:             # bad input; anything else is a bug (_on_internal_error)
            self._bad('bad_input', f'{type(exc).__name__}: {exc}')
            return
        if self.metric is not None:
            header = Header(stamp=image.header.stamp, frame_id=self.outputs.camera_frame(image.header))
            result = self.metric.process(result, rgb, header, info)
        self._last_result = result
        state = result.state.value
        if self.worker.stopping:
            self.stats.frame_processed(inference_ms, state)
            return
        t1 = time.perf_counter()
        regime = self.metric.scale_regime() if self.metric is not None else 'dro_units'
        self.outputs.publish(result, image, info, rgb, regime)   # all or nothing; a failure is internal_error
        publish_ms = (time.perf_counter() - t1) * 1e3
        self.stats.frame_processed(inference_ms, state)     # counted once: processed or dropped, never both
        now_ns = self.get_clock().now().nanoseconds
        self.stats.frame_published((time.monotonic() - frame.received) * 1e3, (now_ns - stamp_ns) * 1e-6,
                                   publish_ms)
        if state == 'lost':
            self.get_logger().warning(f'tracking lost: {result.reason}', throttle_duration_sec=LOG_THROTTLE_S)

    def _after_frame(self, frame: Frame) -> None:
        """Freed buffers of a large frame (or a period's worth) go back to the OS, whatever became of it."""
        self.malloc.after_frame(int(frame.image.width) * int(frame.image.height))

    def _on_internal_error(self, frame: Frame, exc: BaseException) -> None:
        """A bug while processing ``frame`` (not bad input): counted, logged throttled with its traceback."""
        report_internal_error(self, self.stats, self.worker.stopping, stamp_to_ns(frame.image.header.stamp),
                              exc)

    def _bad(self, reason: str, detail: str) -> None:
        report_bad_input(self, self.stats, reason, detail)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the worker (after its current frame) and drop the subscriptions."""
        if not self.worker.stop(timeout):
            self.get_logger().warning(f'inference thread did not stop within {timeout:.0f} s')
        if self.metric is not None and not self.metric.stop(timeout):
            self.get_logger().warning(f'metric thread did not stop within {timeout:.0f} s')
        for owner in (self.estimator, getattr(self.metric, 'model', None)):
            close = getattr(owner, 'close', None)           # background engine compiles
            if close is not None and not close(60.0):
                self.get_logger().warning('an engine compile did not finish within 60 s')
        self.tf.close()
        self.timeline.close()
        self.pairing.destroy()

    def destroy_node(self) -> None:
        self.shutdown()
        super().destroy_node()


def _torch_threads() -> int:
    import torch
    return torch.get_num_threads()


def _rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; NaN elsewhere)."""
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20
    except (OSError, ValueError, IndexError):
        return float('nan')


def main(args: Optional[List[str]] = None) -> int:
    """Run the node until SIGINT / SIGTERM; exit code 0 on a clean shutdown, 2 on invalid parameters."""
    return run_node(SfmNode, 'sfm_node', args)

if __name__ == '__main__':
    sys.exit(main())
