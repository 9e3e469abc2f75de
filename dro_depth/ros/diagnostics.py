"""The node's statistics as ``diagnostic_msgs/DiagnosticArray`` (for /diagnostics, rqt_robot_monitor).

One status, ``<node name>: depth and odometry``, whose values use stable snake_case keys (tests and
scripts read them): rates, latency percentiles, counts, drops per reason with the last reason text,
queue depth, and the estimator's settings and state. Level:

* ERROR: the inference thread died;
* ERROR: the metric thread died;
* WARN: untrained network, tracking lost, frames dropped since the previous report, or no valid metric
  scale after several metric frames;
* OK otherwise.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from .stats import DROP_REASONS

# One period for every throttled warning of the nodes: a reason is logged at most once per this many seconds
# (its count in /diagnostics is exact).
LOG_THROTTLE_S = 5.0

__all__ = ['DiagnosticsReporter', 'status_values']


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float):
        return 'nan' if math.isnan(value) else f'{value:.3f}'
    return str(value)


def status_values(status: DiagnosticStatus) -> Dict[str, str]:
    """A status's key/value pairs as a dictionary."""
    return {kv.key: kv.value for kv in status.values}


class DiagnosticsReporter:
    """Turns snapshots of :class:`~dro_depth.ros.stats.NodeStats` into diagnostic messages.

    Args:
        name: status name, e.g. ``sfm_node: depth and odometry``.
        hardware_id: e.g. the camera frame or the device.
        ok_message: the status message while all is well and outputs are being published.
    """

    def __init__(self, name: str, hardware_id: str = '', ok_message: str = 'tracking') -> None:
        self.name = name
        self.hardware_id = hardware_id
        self.ok_message = ok_message
        self._last_dropped: Optional[int] = None

    def status(self, snapshot: Mapping[str, Any], info: Mapping[str, Any],
               extra_problems: Sequence[str] = ()) -> DiagnosticStatus:
        """Build the status.

        Args:
            snapshot: from ``NodeStats.snapshot()``.
            info: node facts: device, precision, iterations, num_refs, tracking_state, tracking_reason,
                untrained (bool), checkpoint, queue_depth, pending_unpaired, worker_alive (bool), ... Any
                extra key is reported as it is.
            extra_problems: more reasons for a WARN (e.g. from the metric branch).
        """
        drops = snapshot['drops']
        dropped = int(sum(drops.values()))
        newly_dropped = dropped - (self._last_dropped if self._last_dropped is not None else 0)
        self._last_dropped = dropped

        values: Dict[str, Any] = {
            'input_rate_hz': snapshot['input_rate_hz'],
            'processing_rate_hz': snapshot['output_rate_hz'],
            'latency_p50_ms': snapshot['stamp_to_publish_p50_ms'],
            'latency_p95_ms': snapshot['stamp_to_publish_p95_ms'],
            'receive_to_publish_p50_ms': snapshot['receive_to_publish_p50_ms'],
            'receive_to_publish_p95_ms': snapshot['receive_to_publish_p95_ms'],
            'inference_p50_ms': snapshot['inference_p50_ms'],
            'inference_p95_ms': snapshot['inference_p95_ms'],
            'publish_p50_ms': snapshot['publish_p50_ms'],
            'publish_p95_ms': snapshot['publish_p95_ms'],
            'received': snapshot['received'],
            'camera_infos': snapshot['camera_infos'],
            'paired': snapshot['paired'],
            'processed': snapshot['processed'],
            'published': snapshot['published'],
            'dropped_total': dropped,
        }
        for reason in DROP_REASONS:
            values[f'dropped_{reason}'] = int(drops.get(reason, 0))
        for reason, detail in sorted(snapshot['drop_details'].items()):
            values[f'last_{reason}_reason'] = detail
        values['max_queue_depth'] = snapshot['max_queue_depth']
        for state, n in sorted(snapshot.get('states', {}).items()):
            values[f'frames_{state}'] = int(n)          # how often tracking holds, starts over, is lost
        values.update(info)

        problems: List[str] = []
        level = DiagnosticStatus.OK
        if info.get('worker_alive') is False:
            level = DiagnosticStatus.ERROR
            problems.append('inference thread stopped')
        if info.get('untrained'):
            problems.append('UNTRAINED network: random weights, outputs are meaningless')
        if str(info.get('tracking_state', '')) == 'lost':
            problems.append(f'tracking lost: {info.get("tracking_reason", "")}')
        problems.extend(extra_problems)
        if info.get('metric_worker_alive') is False:
            level = DiagnosticStatus.ERROR
        if newly_dropped > 0:
            counts = ', '.join(f'{r} {n}' for r, n in drops.items() if n)
            problems.append(f'dropping frames ({counts})')
        if problems and level == DiagnosticStatus.OK:
            level = DiagnosticStatus.WARN
        if not problems:
            message = self.ok_message if snapshot['published'] else 'waiting for images'
            if snapshot['published'] and info.get('tracking_state'):
                message = str(info['tracking_state'])
                if info.get('scale_regime'):
                    message += f', {info["scale_regime"]}'
        else:
            message = '; '.join(problems)
        return DiagnosticStatus(level=level, name=self.name, message=message, hardware_id=self.hardware_id,
                                values=[KeyValue(key=k, value=_fmt(v)) for k, v in values.items()])

    def array(self, status: DiagnosticStatus, stamp: Any) -> DiagnosticArray:
        """Wrap ``status`` in a DiagnosticArray stamped with ``stamp`` (the node clock's now)."""
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = stamp
        return msg
