"""Frames of the node's outputs (REP 103 / REP 105): optical, base and odom, plus the TF bridge.

The estimator's world frame is the optical frame of the first camera pose (x right, y down, z forward).
The node publishes odometry in ``odom`` with REP 103 axes (x forward, y left, z up) such that ``odom``
coincides with ``base_frame`` at the first frame:

    T_odom_base(t) = T_base_cam . T_world_cam(t) . T_base_cam^-1
    T_odom_cam(t)  = T_odom_base(t) . T_base_cam = T_base_cam . T_world_cam(t)

``T_base_cam`` comes from TF (``base_frame`` -> camera optical frame) when available, otherwise it is the
standard optical -> body rotation with zero offset (:data:`R_BASE_OPTICAL`). It is fixed at the first
processed frame, so the odom frame never jumps.

The pure functions here need only numpy; :class:`TfBridge` imports ``tf2_ros`` lazily and degrades to a
single log line where it is missing (the PyPI runtime has no tf2).
"""
from __future__ import annotations

import logging
import math
from typing import Any, Optional, Tuple

import numpy as np

from dro_depth.geometry import invert_se3

__all__ = ['R_BASE_OPTICAL', 'T_BASE_OPTICAL', 'odom_poses', 'rotate_covariance', 'twist_from_poses',
           'so3_log', 'TfBridge', 'LARGE_VARIANCE']

logger = logging.getLogger(__name__)

# Optical (x right, y down, z forward) -> body (x forward, y left, z up).
R_BASE_OPTICAL = np.array([[0.0, 0.0, 1.0],
                           [-1.0, 0.0, 0.0],
                           [0.0, -1.0, 0.0]])
T_BASE_OPTICAL = np.eye(4)
T_BASE_OPTICAL[:3, :3] = R_BASE_OPTICAL

# Variance published while tracking is lost or a quantity is unknown (robot_localization / Nav2 then
# ignore the measurement).
LARGE_VARIANCE = 1e6


def odom_poses(T_world_cam: np.ndarray,
               T_base_cam: np.ndarray = T_BASE_OPTICAL) -> Tuple[np.ndarray, np.ndarray]:
    """Camera pose in the estimator's world frame -> (T_odom_base, T_odom_cam), both [4, 4] float64."""
    T_world_cam = np.asarray(T_world_cam, dtype=np.float64)
    T_base_cam = np.asarray(T_base_cam, dtype=np.float64)
    T_odom_cam = T_base_cam @ T_world_cam
    T_odom_base = T_odom_cam @ invert_se3(T_base_cam)
    return T_odom_base, T_odom_cam


def rotate_covariance(cov: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Express a 6x6 pose covariance (x, y, z, rot x, rot y, rot z) in axes rotated by ``R`` (new <- old)."""
    J = np.zeros((6, 6))
    J[:3, :3] = R
    J[3:, 3:] = R
    out = J @ np.asarray(cov, dtype=np.float64) @ J.T
    return 0.5 * (out + out.T)


def so3_log(R: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, radians) of a 3x3 rotation matrix."""
    R = np.asarray(R, dtype=np.float64)
    c = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    angle = math.acos(c)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if angle < 1e-7:
        return 0.5 * w
    if math.pi - angle < 1e-4:
        # Near pi: axis from the diagonal.
        axis = np.sqrt(np.maximum((np.diag(R) + 1.0) / 2.0, 0.0))
        k = int(np.argmax(axis))
        axis[(k + 1) % 3] = math.copysign(axis[(k + 1) % 3], R[k, (k + 1) % 3])
        axis[(k + 2) % 3] = math.copysign(axis[(k + 2) % 3], R[k, (k + 2) % 3])
        return axis / np.linalg.norm(axis) * angle
    return w * (angle / (2.0 * math.sin(angle)))


def twist_from_poses(T_prev: np.ndarray, T_cur: np.ndarray, dt: float, cov_prev: np.ndarray,
                     cov_cur: np.ndarray, floor: float = 1e-6) -> Tuple[np.ndarray, np.ndarray]:
    """Body-frame twist between two poses of the same frame by finite differences.

    Args:
        T_prev, T_cur: [4, 4] poses of the child frame in odom at two times.
        dt: seconds between them (> 0).
        cov_prev, cov_cur: their 6x6 covariances in the odom frame.
        floor: variance floor of every component.

    Returns:
        twist [6] (vx, vy, vz, wx, wy, wz) in the child frame (as nav_msgs/Odometry.twist), and its 6x6
        covariance: the covariance the newer pose added (its growth), divided by dt^2, rotated into the
        child frame.
    """
    if not dt > 0:
        raise ValueError(f'twist needs a positive time step, got {dt}')
    T_rel = invert_se3(T_prev) @ T_cur
    twist = np.concatenate([T_rel[:3, 3] / dt, so3_log(T_rel[:3, :3]) / dt])
    growth = np.diag(np.clip(np.diag(cov_cur) - np.diag(cov_prev), 0.0, None))
    cov = rotate_covariance(growth, T_cur[:3, :3].T) / (dt * dt)
    cov += np.eye(6) * floor
    return twist, cov


class TfBridge:
    """Looks up ``base_frame -> camera frame`` and broadcasts the odometry transform, when tf2 exists.

    Args:
        node: the rclpy node.
        publish: broadcast transforms (parameter ``publish_tf``).
    """

    def __init__(self, node: Any, publish: bool) -> None:
        self._node = node
        self._publish = publish
        self._buffer = self._listener = self._broadcaster = None
        self._tf2 = None
        self._warned_lookup = False
        try:
            import tf2_ros  # noqa: F401  (not in the PyPI runtime)
        except ImportError:
            self.available = False
            if publish:
                node.get_logger().warning(
                    'tf2_ros is not installed: not publishing TF (odometry, pose and path are still '
                    'published) and using the standard optical -> body rotation for base_frame -> camera')
            else:
                node.get_logger().info('tf2_ros is not installed: base_frame -> camera assumed to be the '
                                       'standard optical -> body rotation')
            return
        self.available = True
        self._tf2 = tf2_ros
        self._buffer = tf2_ros.Buffer()
        self._listener = tf2_ros.TransformListener(self._buffer, node)
        if publish:
            self._broadcaster = tf2_ros.TransformBroadcaster(node)

    @property
    def publishing(self) -> bool:
        return self._broadcaster is not None

    def lookup(self, target: str, source: str) -> Optional[np.ndarray]:
        """``T_target_source`` at the latest available time, or None (never blocks)."""
        if self._buffer is None or not target or not source:
            return None
        from rclpy.time import Time

        from .conversions import pose_to_matrix
        try:
            tf = self._buffer.lookup_transform(target, source, Time())
        except Exception as exc:  # noqa: BLE001 - tf2's Lookup/Extrapolation/Connectivity exceptions
            if not self._warned_lookup:
                self._node.get_logger().info(f'no TF {target} -> {source} yet ({type(exc).__name__}); '
                                             'using the standard optical -> body rotation')
                self._warned_lookup = True
            return None
        return pose_to_matrix(tf.transform)

    def broadcast(self, T_parent_child: np.ndarray, parent: str, child: str, stamp: Any) -> None:
        """Send one transform stamped with ``stamp`` (the input image's stamp)."""
        if self._broadcaster is None:
            return
        from geometry_msgs.msg import TransformStamped

        from .conversions import matrix_to_transform
        msg = TransformStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = parent
        msg.child_frame_id = child
        msg.transform = matrix_to_transform(T_parent_child)
        self._broadcaster.sendTransform(msg)

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and hasattr(listener, 'unregister'):
            listener.unregister()
