"""Write ROS 2 bags (sqlite3 or mcap storage) with ``rosbags``, without rclpy.

:class:`BagWriter` writes into a temporary directory beside the target and renames it into place on a
successful close; on an exception the partial bag is deleted, so a bag at the target path is always
complete. Bag message timestamps equal the header stamps.

Conventions: images/depth in the camera optical frame (``camera_optical_frame``), depth 32FC1 metres
with NaN invalid (REP 118); poses are ``geometry_msgs/PoseStamped`` in ``odom`` holding ``T_odom_cam``,
the pose of the camera optical frame in the world frame; odometry is ``nav_msgs/Odometry`` with
``header.frame_id = odom`` and ``child_frame_id`` the optical frame (same pose), covariance row-major 6x6
over (x, y, z, rot_x, rot_y, rot_z).
"""
from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from .bags import DEFAULT_TOPICS, BagError, typestore
from .image_encoding import array_to_image_fields
from .poses import pose_to_tq
from .sequence import DEFAULT_FRAME_ID, DEFAULT_WORLD_FRAME, Sequence, stamp_to_ns

logger = logging.getLogger(__name__)

STORAGES = ('sqlite3', 'mcap')


class BagWriter:
    """Context manager writing a ROS 2 bag atomically.

    Example::

        with BagWriter('out/run1', storage='mcap') as bag:
            bag.write_image('/depth', frame.stamp_ns, depth, '32FC1')
            bag.write_pose('/pose', frame.stamp_ns, T_world_cam)

    Stamps are float seconds or integer nanoseconds (ints are always nanoseconds).

    Args:
        path: target bag directory; must not exist unless ``overwrite``.
        storage: 'sqlite3' or 'mcap'.
        distro: ROS 2 distro whose message definitions are stored ('jazzy' default; the message
            layouts used here are identical in humble..kilted).
        version: rosbag2 metadata version (8 or 9; rosbags writes no older versions).
        overwrite: replace an existing bag at ``path`` on success.
    """

    def __init__(self, path: str | Path, storage: str = 'sqlite3', distro: str = 'jazzy', version: int = 9,
                 overwrite: bool = False):
        if storage not in STORAGES:
            raise ValueError(f'unknown bag storage {storage!r}; expected one of {STORAGES}')
        self.path = Path(path)
        self.storage = storage
        self.overwrite = overwrite
        self.version = version
        self._store = typestore(distro)
        self._tmp = self.path.parent / f'.{self.path.name}.tmp-{uuid.uuid4().hex[:8]}'
        self._writer = None
        self._conns: dict[str, object] = {}
        self.counts: dict[str, int] = {}

    # ----------------------------------------------------------------------------- lifecycle
    def open(self) -> 'BagWriter':
        from rosbags.rosbag2 import StoragePlugin, Writer
        if self._writer is not None:
            raise RuntimeError('BagWriter is already open')
        if self.path.exists() and not self.overwrite:
            raise FileExistsError(f'bag {self.path} already exists (pass overwrite=True to replace it)')
        self.path.parent.mkdir(parents=True, exist_ok=True)
        plugin = StoragePlugin.MCAP if self.storage == 'mcap' else StoragePlugin.SQLITE3
        # the bag is built as <parent>/.<name>.tmp-XXXX/<name> so its files carry the final name
        self._tmp.mkdir()
        try:
            self._writer = Writer(self._tmp / self.path.name, version=self.version, storage_plugin=plugin)
            self._writer.open()
        except Exception:
            self._writer = None
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        return self

    def close(self) -> None:
        """Finish the bag and move it to :attr:`path`."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.close()
            if self.path.exists():
                if not self.overwrite:
                    raise FileExistsError(f'bag {self.path} appeared while writing')
                shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
            os.replace(self._tmp / self.path.name, self.path)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
        logger.info('wrote bag %s (%s): %s', self.path, self.storage, self.counts)

    def abort(self) -> None:
        """Discard everything written so far."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the partial bag is deleted anyway
                pass
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> 'BagWriter':
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # ----------------------------------------------------------------------------- messages
    def _conn(self, topic: str, msgtype: str):
        if self._writer is None:
            raise RuntimeError('BagWriter is not open (use it as a context manager or call open())')
        if not topic.startswith('/'):
            topic = '/' + topic
        c = self._conns.get(topic)
        if c is None:
            c = self._writer.add_connection(topic, msgtype, typestore=self._store)
            self._conns[topic] = c
        elif c.msgtype != msgtype:
            raise ValueError(f'topic {topic} already carries {c.msgtype}, cannot write {msgtype}')
        return c

    def write_message(self, topic: str, msgtype: str, stamp_ns: int, msg) -> None:
        """Serialise and write any message of the typestore (bag timestamp = ``stamp_ns``)."""
        conn = self._conn(topic, msgtype)
        self._writer.write(conn, int(stamp_ns), self._store.serialize_cdr(msg, msgtype))
        self.counts[conn.topic] = self.counts.get(conn.topic, 0) + 1

    def _header(self, stamp_ns: int, frame_id: str):
        T = self._store.types
        return T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](
            sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=str(frame_id))

    def write_image(self, topic: str, stamp: float | int, array: np.ndarray, encoding: str | None = None,
                    frame_id: str = DEFAULT_FRAME_ID) -> None:
        """``sensor_msgs/Image``; ``encoding`` inferred from the array when None (see
        :func:`~dro_depth.data.image_encoding.guess_encoding`), e.g. '32FC1' for float depth."""
        ns = stamp_to_ns(stamp)
        fields = array_to_image_fields(array, encoding)
        msg = self._store.types['sensor_msgs/msg/Image'](header=self._header(ns, frame_id), **fields)
        self.write_message(topic, 'sensor_msgs/msg/Image', ns, msg)

    def write_depth(self, topic: str, stamp: float | int, depth: np.ndarray,
                    frame_id: str = DEFAULT_FRAME_ID) -> None:
        """Depth ``(H, W)`` metres as 32FC1 (NaN invalid)."""
        self.write_image(topic, stamp, np.asarray(depth, np.float32), '32FC1', frame_id)

    def write_camera_info(self, topic: str, stamp: float | int, K: np.ndarray, width: int, height: int,
                          frame_id: str = DEFAULT_FRAME_ID, D: np.ndarray | None = None,
                          distortion_model: str = 'plumb_bob', R: np.ndarray | None = None,
                          P: np.ndarray | None = None) -> None:
        """``sensor_msgs/CameraInfo``: D defaults to five zeros, R to identity, P to ``[K | 0]``."""
        ns = stamp_to_ns(stamp)
        K = np.asarray(K, np.float64)
        if K.shape != (3, 3):
            raise ValueError(f'K must be 3x3, got {K.shape}')
        R = np.eye(3) if R is None else np.asarray(R, np.float64)
        P = np.concatenate([K, np.zeros((3, 1))], 1) if P is None else np.asarray(P, np.float64)
        if R.shape != (3, 3) or P.shape != (3, 4):
            raise ValueError(f'R must be 3x3 and P 3x4, got {R.shape} and {P.shape}')
        D = np.zeros(5) if D is None else np.asarray(D, np.float64).ravel()
        T = self._store.types
        roi = T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                    do_rectify=False)
        msg = T['sensor_msgs/msg/CameraInfo'](header=self._header(ns, frame_id), height=int(height),
                                              width=int(width), distortion_model=distortion_model, d=D,
                                              k=K.ravel().copy(), r=R.ravel().copy(), p=P.ravel().copy(),
                                              binning_x=0, binning_y=0, roi=roi)
        self.write_message(topic, 'sensor_msgs/msg/CameraInfo', ns, msg)

    def _pose_msg(self, T_: np.ndarray):
        t, q = pose_to_tq(T_)
        T = self._store.types
        return T['geometry_msgs/msg/Pose'](
            position=T['geometry_msgs/msg/Point'](x=float(t[0]), y=float(t[1]), z=float(t[2])),
            orientation=T['geometry_msgs/msg/Quaternion'](x=float(q[0]), y=float(q[1]), z=float(q[2]),
                                                          w=float(q[3])))

    def write_pose(self, topic: str, stamp: float | int, T: np.ndarray,
                   frame_id: str = DEFAULT_WORLD_FRAME) -> None:
        """``geometry_msgs/PoseStamped`` of a 4x4 pose (e.g. T_odom_cam) expressed in ``frame_id``."""
        ns = stamp_to_ns(stamp)
        msg = self._store.types['geometry_msgs/msg/PoseStamped'](header=self._header(ns, frame_id),
                                                                 pose=self._pose_msg(T))
        self.write_message(topic, 'geometry_msgs/msg/PoseStamped', ns, msg)

    def write_odometry(self, topic: str, stamp: float | int, T: np.ndarray,
                       covariance: np.ndarray | None = None,
                       frame_id: str = DEFAULT_WORLD_FRAME, child_frame_id: str = DEFAULT_FRAME_ID,
                       twist: np.ndarray | None = None, twist_covariance: np.ndarray | None = None) -> None:
        """``nav_msgs/Odometry``: pose ``T`` (child in ``frame_id``) with a 6x6 covariance (default zeros),
        optional twist ``(6,)`` = (vx, vy, vz, wx, wy, wz) in the child frame."""
        ns = stamp_to_ns(stamp)
        Ty = self._store.types
        cov = np.zeros(36) if covariance is None else np.asarray(covariance, np.float64).ravel()
        tcov = np.zeros(36) if twist_covariance is None else np.asarray(twist_covariance, np.float64).ravel()
        if cov.size != 36 or tcov.size != 36:
            raise ValueError('odometry covariances must be 6x6 (36 values)')
        tw = np.zeros(6) if twist is None else np.asarray(twist, np.float64).ravel()
        if tw.size != 6:
            raise ValueError(f'twist must have 6 values, got {tw.size}')
        V = Ty['geometry_msgs/msg/Vector3']
        msg = Ty['nav_msgs/msg/Odometry'](
            header=self._header(ns, frame_id), child_frame_id=str(child_frame_id),
            pose=Ty['geometry_msgs/msg/PoseWithCovariance'](pose=self._pose_msg(T), covariance=cov.copy()),
            twist=Ty['geometry_msgs/msg/TwistWithCovariance'](
                twist=Ty['geometry_msgs/msg/Twist'](linear=V(x=tw[0], y=tw[1], z=tw[2]),
                                                    angular=V(x=tw[3], y=tw[4], z=tw[5])),
                covariance=tcov.copy()))
        self.write_message(topic, 'nav_msgs/msg/Odometry', ns, msg)


def write_sequence_bag(seq: Sequence, path: str | Path, storage: str = 'sqlite3',
                       image_topic: str = DEFAULT_TOPICS['image'],
                       camera_info_topic: str = DEFAULT_TOPICS['camera_info'],
                       depth_topic: str | None = DEFAULT_TOPICS['depth'],
                       pose_topic: str | None = DEFAULT_TOPICS['pose'],
                       world_frame: str = DEFAULT_WORLD_FRAME, overwrite: bool = False,
                       distro: str = 'jazzy') -> Path:
    """Write a sequence as a ROS 2 bag: rgb8 images, camera_info (K, P = [K|0], R = I, D = 0 plumb_bob),
    ground-truth depth (32FC1, NaN invalid) and pose (PoseStamped of the optical frame in ``world_frame``)
    when the sequence has them and the topic is not None. Header stamps = sequence stamps.

    Returns:
        the bag path.
    """
    with BagWriter(path, storage=storage, overwrite=overwrite, distro=distro) as bag:
        for i in range(len(seq)):
            ns = stamp_to_ns(float(seq.stamps[i]))
            bag.write_camera_info(camera_info_topic, ns, seq.K, seq.width, seq.height, seq.frame_id)
            bag.write_image(image_topic, ns, seq.images[i], 'rgb8', seq.frame_id)
            if depth_topic and seq.depths is not None:
                bag.write_depth(depth_topic, ns, seq.depths[i], seq.frame_id)
            if pose_topic and seq.poses is not None:
                bag.write_pose(pose_topic, ns, seq.poses[i], world_frame)
    return Path(path)


def write_stereo_bag(stereo, path: str | Path, storage: str = 'sqlite3', overwrite: bool = False,
                     depth_encoding: str = '32FC1', distro: str = 'jazzy') -> Path:
    """Write a rectified stereo sequence as a ROS 2 bag with ground-truth depth of both views.

    Topics ``/left/{image,camera_info,depth,pose}`` and ``/right/...`` (frames
    ``camera_{left,right}_optical_frame``), rgb8 images, R = I, D = 0; the right camera_info carries the ROS
    stereo convention ``P[0, 3] = -fx * baseline``. Header stamps = sequence stamps.

    Args:
        stereo: a :class:`~dro_depth.data.synthetic.StereoSequence` (``left``, ``right``, ``baseline``).
        depth_encoding: '32FC1' (metres, NaN invalid) or '16UC1' (millimetres, 0 invalid; REP 118).

    Returns:
        the bag path.
    """
    from .image_encoding import metres_to_depth16
    if depth_encoding not in ('32FC1', '16UC1'):
        raise ValueError(f"depth_encoding must be '32FC1' or '16UC1', got {depth_encoding!r}")
    K = stereo.left.K
    P_right = np.concatenate([K, np.zeros((3, 1))], 1)
    P_right[0, 3] = -K[0, 0] * stereo.baseline
    with BagWriter(path, storage=storage, overwrite=overwrite, distro=distro) as bag:
        for i in range(len(stereo.left)):
            ns = stamp_to_ns(float(stereo.left.stamps[i]))
            for side, seq, P in (('left', stereo.left, None), ('right', stereo.right, P_right)):
                frame = f'camera_{side}_optical_frame'
                bag.write_camera_info(f'/{side}/camera_info', ns, K, seq.width, seq.height, frame, P=P)
                bag.write_image(f'/{side}/image', ns, seq.images[i], 'rgb8', frame)
                if depth_encoding == '16UC1':
                    bag.write_image(f'/{side}/depth', ns, metres_to_depth16(seq.depths[i]), '16UC1', frame)
                else:
                    bag.write_depth(f'/{side}/depth', ns, seq.depths[i], frame)
                bag.write_pose(f'/{side}/pose', ns, seq.poses[i])
    return Path(path)


__all__ = ['BagWriter', 'BagError', 'write_sequence_bag', 'write_stereo_bag', 'STORAGES']
