"""Everything the node publishes for one frame.

Every message carries the INPUT image's ``header.stamp`` (never ``now()``), so outputs line up with
their image under ``use_sim_time`` and bag replay. Image-like outputs (depth, depth/camera_info,
confidence, points) are in the camera's optical frame; pose, odom and path are in ``odom_frame``.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Mapping, Optional, Tuple

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from dro_depth.errors import DroDepthError
from dro_depth.geometry.cloud import CloudFilter, filter_points

from .conversions import (camera_info_for, float_to_image, matrix_to_pose, points_to_pointcloud2,
                          stamp_to_sec)
from .diagnostics import LOG_THROTTLE_S
from .frames import LARGE_VARIANCE, T_BASE_OPTICAL, TfBridge, odom_poses, rotate_covariance, twist_from_poses
from .qos import output_qos

__all__ = ['OutputPublisher', 'OdomSample']

_POSE_VARIANCE_FLOOR = 1e-6


@dataclass
class OdomSample:
    """The previous published odometry, for the finite-difference twist."""

    stamp: float
    T_odom_base: np.ndarray
    covariance: np.ndarray


class OutputPublisher:
    """Creates the output publishers and turns a FrameResult into messages.

    Args:
        node: the rclpy node.
        values: validated parameter values (``publish_*``, frames, ``path_max_length``, ...); the
            run-time switches are re-read on every frame from this mapping.
        tf: the TF bridge (lookup of base -> camera, odometry broadcast).
    """

    def __init__(self, node: Any, values: Mapping[str, Any], tf: TfBridge) -> None:
        self._node = node
        self._values = values
        self._tf = tf
        qos = output_qos(values['output_qos_depth'])
        self.depth = node.create_publisher(Image, 'depth', qos)
        self.depth_info = node.create_publisher(CameraInfo, 'depth/camera_info', qos)
        self.confidence = node.create_publisher(Image, 'confidence', qos)
        self.pose = node.create_publisher(PoseStamped, 'pose', qos)
        self.odom = node.create_publisher(Odometry, 'odom', qos)
        self.path = node.create_publisher(Path, 'path', qos)
        self.points = node.create_publisher(PointCloud2, 'points', qos)
        self._path: Deque[PoseStamped] = deque(maxlen=int(values['path_max_length']))
        self._prev: Optional[OdomSample] = None
        self.T_base_cam: Optional[np.ndarray] = None
        self.T_base_cam_source = ''
        self._warned_frame = False
        self.points_withheld = ''            # why the last cloud was not sent ('' = sent or not asked for)

    # ------------------------------------------------------------------ frames
    def camera_frame(self, image_header: Header) -> str:
        frame = self._values['camera_frame'] or image_header.frame_id
        if not frame:
            frame = 'camera_optical_frame'
            if not self._warned_frame:
                self._node.get_logger().warning('input images have no header.frame_id and parameter '
                                                f"camera_frame is empty: publishing in '{frame}'")
                self._warned_frame = True
        return frame

    def _resolve_base_cam(self, camera_frame: str) -> np.ndarray:
        """T_base_cam, fixed at the first frame: TF's base_frame -> camera when known, else the standard
        optical -> body rotation."""
        if self.T_base_cam is None:
            T = self._tf.lookup(self._values['base_frame'], camera_frame)
            if T is not None:
                self.T_base_cam, self.T_base_cam_source = T, 'tf'
            else:
                self.T_base_cam, self.T_base_cam_source = T_BASE_OPTICAL.copy(), 'optical_to_body'
            self._node.get_logger().info(f'{self._values["base_frame"]} -> {camera_frame}: '
                                         f'{self.T_base_cam_source}')
        return self.T_base_cam

    # ------------------------------------------------------------------ publishing
    def publish(self, result: Any, image_msg: Image, info_msg: CameraInfo, rgb: Optional[np.ndarray],
                scale_regime: str = 'dro_units') -> None:
        """Publish every enabled output of ``result`` (an estimator FrameResult) for ``image_msg``.

        ``scale_regime`` ('dro_units' | 'converging' | 'metric'): points are published only when it is
        'metric', unless ``points_allow_unscaled`` (a voxel layer must never receive DRO units).

        All or nothing: every message is built first, so a failure while converting (raised to the
        caller, which counts it) leaves nothing of this frame published.
        """
        values = self._values
        out: List[Tuple[Any, Any]] = []
        stamp = image_msg.header.stamp
        cam_header = Header(stamp=stamp, frame_id=self.camera_frame(image_msg.header))
        height, width = result.depth.shape

        out.append((self.depth, float_to_image(result.depth, cam_header)))
        out.append((self.depth_info, camera_info_for(info_msg, cam_header, width, height)))
        if values['publish_confidence']:
            out.append((self.confidence, float_to_image(result.confidence, cam_header)))
        if values['publish_points'] and self.points.get_subscription_count() > 0:
            cloud = self._cloud(result, info_msg, rgb, cam_header, scale_regime)
            if cloud is not None:
                out.append((self.points, cloud))

        T_base_cam = self._resolve_base_cam(cam_header.frame_id)
        T_odom_base, T_odom_cam = odom_poses(result.T_world_cam, T_base_cam)
        odom_header = Header(stamp=stamp, frame_id=values['odom_frame'])
        lost = getattr(result.state, 'value', result.state) == 'lost'

        pose = PoseStamped(header=odom_header, pose=matrix_to_pose(T_odom_cam))
        out.append((self.pose, pose))
        out.append((self.odom, self._odometry(result, odom_header, T_odom_base, T_base_cam, lost)))
        for publisher, msg in out:
            publisher.publish(msg)
        if values['publish_path']:
            self._path.append(pose)
            self.path.publish(Path(header=odom_header, poses=list(self._path)))
        if self._tf.publishing:
            if self.T_base_cam_source == 'tf':
                self._tf.broadcast(T_odom_base, values['odom_frame'], values['base_frame'], stamp)
            else:
                self._tf.broadcast(T_odom_cam, values['odom_frame'], cam_header.frame_id, stamp)

    def _cloud(self, result: Any, info_msg: CameraInfo, rgb: Optional[np.ndarray], header: Header,
               scale_regime: str) -> Optional[PointCloud2]:
        """The filtered navigation cloud (dro_depth.geometry.cloud), or None while it must not be sent."""
        values = self._values
        if scale_regime != 'metric' and not values['points_allow_unscaled']:
            self.points_withheld = scale_regime
            return None
        self.points_withheld = ''
        try:
            cfg = CloudFilter.from_values(values)
        except DroDepthError as exc:                 # e.g. points_min_range >= points_max_range at run time
            self._node.get_logger().warning(f'points not published: {exc}',
                                            throttle_duration_sec=LOG_THROTTLE_S)
            self.points_withheld = 'bad_parameters'
            return None
        K = result.camera.K if result.camera is not None else np.asarray(info_msg.k).reshape(3, 3)
        return points_to_pointcloud2(filter_points(result.depth, K, cfg, result.confidence), rgb, header)

    def _odometry(self, result: Any, header: Header, T_odom_base: np.ndarray, T_base_cam: np.ndarray,
                  lost: bool) -> Odometry:
        msg = Odometry(header=header, child_frame_id=self._values['base_frame'])
        msg.pose.pose = matrix_to_pose(T_odom_base)
        stamp = stamp_to_sec(header.stamp)
        if lost:
            cov = np.eye(6) * LARGE_VARIANCE
        else:
            cov = rotate_covariance(result.covariance, T_base_cam[:3, :3])
            cov[np.diag_indices(6)] = np.maximum(np.diag(cov), _POSE_VARIANCE_FLOOR)
        msg.pose.covariance = cov.ravel().tolist()

        twist = np.zeros(6)
        twist_cov = np.eye(6) * LARGE_VARIANCE
        prev = self._prev
        if not lost and prev is not None and not result.reset and stamp > prev.stamp:
            twist, twist_cov = twist_from_poses(prev.T_odom_base, T_odom_base, stamp - prev.stamp,
                                                prev.covariance, cov)
        lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
        lin.x, lin.y, lin.z = map(float, twist[:3])
        ang.x, ang.y, ang.z = map(float, twist[3:])
        msg.twist.covariance = twist_cov.ravel().tolist()
        self._prev = None if lost else OdomSample(stamp, T_odom_base, cov)
        return msg

    def path_length(self) -> int:
        return len(self._path)

    def info(self) -> Dict[str, Any]:
        """Facts for diagnostics."""
        if self._tf.publishing:
            tf = 'publishing'
        else:
            tf = 'off' if self._tf.available else 'tf2_ros missing'
        return {'base_to_camera': self.T_base_cam_source or 'unknown', 'tf': tf,
                'points_withheld': self.points_withheld}

