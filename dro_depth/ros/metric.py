"""The node's metric branch: metric depth in its own thread, and the metric scale of DRO's outputs.

The DRO worker calls :meth:`MetricBranch.process` on every result: depth, pose and covariance come back
scaled by the current filtered scale (see :class:`~dro_depth.metric.scaler.MetricScaler`), and every
``metric.rate``-th frame (or each keyframe, rate 0) goes to the metric thread. That thread runs the
metric model on the newest submitted frame only (a single-slot mailbox, like DRO's), publishes
``metric_depth`` (32FC1 metres, the input's stamp) with its ``metric_depth/camera_info``, and feeds the
scale filter. DRO never waits for it: a slow metric model
only makes scale updates rarer (counted as ``metric_skipped``).
"""
from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from dro_depth.metric.depth_estimator import MetricDepthConfig, MetricDepthEstimator, MetricInputError, parse_resolution
from dro_depth.metric.scaler import MetricScaler
from .conversions import camera_info_for, float_to_image
from .diagnostics import LOG_THROTTLE_S
from .qos import output_qos
from .stats import LatencyWindow
from .worker import InferenceWorker

__all__ = ['MetricBranch', 'build_metric_model', 'metric_config']



def metric_config(values: Mapping[str, Any]) -> MetricDepthConfig:
    """The :class:`MetricDepthConfig` of validated node parameter ``values``."""
    return MetricDepthConfig(checkpoint=values['metric.checkpoint'] or None,
                             backbone=values['metric.backbone'],
                             domain=values['metric.domain'],
                             resolution=parse_resolution(values['metric.resolution']),
                             precision=values['metric.precision'], device=values['device'],
                             backend=values['metric.backend'], threads=values['metric.threads'],
                             engine_cache=values['engine_cache'] or None)


def build_metric_model(values: Mapping[str, Any]) -> Any:
    """The metric estimator of validated ``values``: Depth Anything V2 for ``metric.backbone:
    depth_anything``, ZoeDepth (light or BEiT) otherwise."""
    if values['metric.backbone'] != 'depth_anything':
        return MetricDepthEstimator(metric_config(values))
    from dro_depth.metric.depth_anything_metric import DepthAnythingMetricConfig, DepthAnythingMetricEstimator
    return DepthAnythingMetricEstimator(DepthAnythingMetricConfig(
        indoor=values['metric.da_indoor'] or None, outdoor=values['metric.da_outdoor'] or None,
        encoder=values['metric.da_encoder'], input_size=int(values['metric.da_input_size']),
        precision=values['metric.precision'], device=values['device'], domain=values['metric.domain']))


@dataclass
class MetricJob:
    rgb: np.ndarray
    stamp: float
    header: Header          # output header (input stamp, camera frame)
    info: CameraInfo


class MetricBranch:
    """Owns the metric model, its thread, the scale filter and the ``metric_depth`` publishers.

    Args:
        node: the rclpy node (publishers, logger).
        values: validated parameters (``metric.*``, ``min_depth``, ``max_depth``, ``device``).
        model: an already built :class:`MetricDepthEstimator` (tests); built from ``values`` otherwise.
    """

    def __init__(self, node: Any, values: Mapping[str, Any],
                 model: Optional[MetricDepthEstimator] = None) -> None:
        self._node = node
        self.model = model if model is not None else build_metric_model(values)
        self.scaler = MetricScaler(min_depth=values['min_depth'], max_depth=values['max_depth'])
        self.rate = int(values['metric.rate'])
        self._lock = threading.Lock()          # scaler: DRO thread (apply) vs metric thread (observe)
        self._pending_domain: Optional[str] = None
        self._frames_seen = 0
        self.latency = LatencyWindow()
        self.processed = 0
        self.skipped = 0                       # submitted frames replaced by a newer one before running
        self.failed = 0                        # metric input errors (MetricInputError)
        self.internal_errors = 0               # bugs, logged with their traceback
        self.observations = {'valid': 0, 'invalid': 0}
        self.last_reason = ''
        qos = output_qos(values['output_qos_depth'])
        self.pub = node.create_publisher(Image, 'metric_depth', qos)
        self.pub_info = node.create_publisher(CameraInfo, 'metric_depth/camera_info', qos)
        self.worker: InferenceWorker[MetricJob] = InferenceWorker(self._process, on_drop=self._on_drop,
                                                                  name='sfm-metric',
                                                                  on_error=self._on_internal_error)
        self.worker.start()

    # ------------------------------------------------------------------ DRO worker thread
    def process(self, result: Any, rgb: np.ndarray, header: Header, info: CameraInfo) -> Any:
        """The estimator ``result`` in metres once the scale is known (see MetricScaler); hands the frame
        to the metric thread when ``metric.rate`` says so (every n-th frame, or keyframes for 0)."""
        self._frames_seen += 1
        rate = self.rate
        due = result.is_keyframe if rate == 0 else (self._frames_seen - 1) % rate == 0
        due = due and not self.worker.stopping
        with self._lock:
            scaled = self.scaler.on_frame(result, pair=due)
        if due:
            self.worker.submit(MetricJob(rgb, result.stamp, header, info))
        return scaled

    # ------------------------------------------------------------------ executor thread
    def set_domain(self, domain: str) -> None:
        """Applied by the metric thread before its next frame."""
        with self._lock:
            self._pending_domain = domain

    def _on_drop(self, job: MetricJob) -> None:
        self.skipped += 1

    # ------------------------------------------------------------------ metric thread
    def _on_internal_error(self, job: MetricJob, exc: BaseException) -> None:
        self.internal_errors += 1
        if self.worker.stopping:
            return
        trace = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._node.get_logger().error(f'metric thread: internal error at stamp {job.stamp:.9f} (counted in '
                                      f'/diagnostics as metric_internal_error):\n{trace}',
                                      throttle_duration_sec=LOG_THROTTLE_S)

    def _process(self, job: MetricJob) -> None:
        with self._lock:
            domain, self._pending_domain = self._pending_domain, None
        if domain is not None:
            self.model.domain = domain
        log = self._node.get_logger()
        try:
            pred = self.model.predict(job.rgb)
        except MetricInputError as exc:
            self.failed += 1
            log.warning(f'metric depth skipped: {exc}', throttle_duration_sec=LOG_THROTTLE_S)
            return
        self.latency.add(pred.latency_ms)
        with self._lock:
            obs = self.scaler.on_metric(job.stamp, pred.depth)
        self.processed += 1
        if obs is not None:
            self.observations['valid' if obs.valid else 'invalid'] += 1
            self.last_reason = obs.reason
            if not obs.valid:
                log.debug(f'scale observation at {job.stamp:.3f} rejected: {obs.reason}')
        elif self.processed > 3:
            self.last_reason = 'no DRO frame with this stamp is waiting (DRO result too old or reset)'
        if self.worker.stopping:
            return
        h, w = pred.depth.shape
        self.pub.publish(float_to_image(pred.depth, job.header))
        self.pub_info.publish(camera_info_for(job.info, job.header, w, h))

    # ------------------------------------------------------------------ read-out
    def scale_regime(self) -> str:
        """'dro_units' | 'converging' | 'metric': the unit of the depth :meth:`process` last returned."""
        with self._lock:
            return self.scaler.regime.value

    def diagnostics(self) -> Dict[str, Any]:
        with self._lock:
            d = self.scaler.diagnostics()
        d.update(self.model.diagnostics())
        d.update({'metric_rate': self.rate if self.rate else 'keyframes', 'metric_processed': self.processed,
                  'metric_skipped': self.skipped, 'metric_failed': self.failed,
                  'metric_internal_error': self.internal_errors,
                  'metric_latency_p50_ms': self.latency.percentile(50),
                  'metric_latency_p95_ms': self.latency.percentile(95),
                  'scale_observations_valid': self.observations['valid'],
                  'scale_observations_invalid': self.observations['invalid'],
                  'scale_last_observation': self.last_reason or ('valid' if self.observations['valid']
                                                                 else ''),
                  'metric_worker_alive': self.worker.alive})
        return d

    def problems(self) -> List[str]:
        """Reasons for a WARN (empty when fine)."""
        out = []
        if not self.worker.alive:
            out.append('metric thread stopped')
        if self.internal_errors:
            out.append(f'metric thread: {self.internal_errors} internal errors (see the log)')
        if self.processed >= 5 and self.observations['valid'] == 0:
            out.append(f'no valid metric scale after {self.processed} metric frames: outputs stay in DRO '
                       f'units ({self.last_reason})')
        return out

    def stop(self, timeout: float = 10.0) -> bool:
        return self.worker.stop(timeout)

