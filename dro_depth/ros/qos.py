"""Quality-of-service profiles of the node (REP 2003, image_pipeline practice).

* Inputs (image, camera_info): sensor-data QoS (best effort, keep last, shallow), with the reliability
  and depth overridable by parameters, e.g. ``reliable`` to record every frame from a reliable bag.
* A camera that publishes its CameraInfo only once must latch it (transient local): :func:`latched_qos`.
* Outputs: system-default QoS (reliable, volatile, keep last), which both reliable and best-effort
  subscribers (RViz, Nav2, rosbag) can match.
"""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from dro_depth.errors import ConfigError

__all__ = ['RELIABILITIES', 'input_qos', 'latched_qos', 'output_qos', 'diagnostics_qos', 'describe_qos']

RELIABILITIES = ('best_effort', 'reliable', 'system_default')
_RELIABILITY = {
    'best_effort': ReliabilityPolicy.BEST_EFFORT,
    'reliable': ReliabilityPolicy.RELIABLE,
    'system_default': ReliabilityPolicy.SYSTEM_DEFAULT,
}


def input_qos(reliability: str = 'best_effort', depth: int = 5) -> QoSProfile:
    """Sensor-data QoS for image and camera_info subscriptions (``rclpy.qos.qos_profile_sensor_data``
    with overrides)."""
    if reliability not in _RELIABILITY:
        raise ConfigError(f'QoS reliability must be one of {RELIABILITIES}, got {reliability!r}')
    if depth < 1:
        raise ConfigError(f'QoS depth must be >= 1, got {depth}')
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth),
                      reliability=_RELIABILITY[reliability], durability=DurabilityPolicy.VOLATILE)


def latched_qos() -> QoSProfile:
    """Reliable + transient local, depth 1: receives a CameraInfo that a latched publisher sent before
    this node started (it cannot match a volatile publisher)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def output_qos(depth: int = 5) -> QoSProfile:
    """System-default style QoS for published outputs: reliable, volatile, keep last ``depth``."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth),
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


def diagnostics_qos() -> QoSProfile:
    """QoS of ``/diagnostics`` (as diagnostic_updater: reliable, volatile)."""
    return output_qos(10)


def describe_qos(qos: QoSProfile) -> str:
    """Short human-readable form, e.g. ``best_effort/volatile/depth 5``."""
    return f'{qos.reliability.name.lower()}/{qos.durability.name.lower()}/depth {qos.depth}'
