"""Read ROS 2 bags (sqlite3 or mcap storage) into frames with ``rosbags``, without rclpy.

:func:`read_bag` iterates camera frames: each image (``sensor_msgs/Image`` or ``CompressedImage``) is
paired with the ``camera_info`` of the same header stamp (or the latest earlier one; the first one if
none is earlier), and optionally with a ground-truth depth image and a ground-truth pose of the same
stamp. Pose topics may be ``geometry_msgs/PoseStamped``, ``PoseWithCovarianceStamped``,
``TransformStamped`` or ``nav_msgs/Odometry``; the pose is read as ``T_world_cam`` of the optical frame.

Every failure to open or decode a bag raises :class:`BagError` (a ``ValueError``) naming the bag.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from dro_depth.errors import DroDepthError
from .image_encoding import ImageEncodingError, depth_to_metres, image_fields_to_array, to_rgb
from .poses import tq_to_pose
from .sequence import Frame, Sequence

logger = logging.getLogger(__name__)

DEFAULT_TOPICS = {'image': '/image', 'camera_info': '/camera_info', 'depth': '/depth', 'pose': '/pose'}
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
POSE_TYPES = ('geometry_msgs/msg/PoseStamped', 'geometry_msgs/msg/PoseWithCovarianceStamped',
              'geometry_msgs/msg/TransformStamped', 'nav_msgs/msg/Odometry')


class BagError(DroDepthError):
    """A bag is missing, unreadable, corrupt, or lacks the requested topics."""


def typestore(distro: str = 'jazzy'):
    """``rosbags`` typestore of a ROS 2 distro ('humble', 'iron', 'jazzy', 'kilted', ...)."""
    from rosbags.typesys import Stores, get_typestore
    try:
        return get_typestore(Stores[f'ROS2_{distro.upper()}'])
    except KeyError:
        raise ValueError(f'unknown ROS 2 distro {distro!r} for the rosbags typestore') from None


def _open(path: str | Path):
    from rosbags.highlevel import AnyReader
    p = Path(path)
    if not p.exists():
        raise BagError(f'bag {p} does not exist')
    if p.is_dir() and not (p / 'metadata.yaml').exists():
        raise BagError(f'{p} is not a ROS 2 bag: metadata.yaml is missing')
    try:
        reader = AnyReader([p], default_typestore=typestore())
        reader.open()
    except Exception as e:  # rosbags raises several unrelated error types for broken bags
        raise BagError(f'cannot open bag {p}: {type(e).__name__}: {e}') from e
    return reader


def list_topics(path: str | Path) -> dict[str, str]:
    """Topics of a bag and their message types, e.g. ``{'/image': 'sensor_msgs/msg/Image'}``."""
    reader = _open(path)
    try:
        return {c.topic: c.msgtype for c in reader.connections}
    finally:
        reader.close()


def _resolve(topics: dict[str, str], name: str | None, role: str, allowed: tuple[str, ...],
             path: Path) -> str | None:
    """Find ``name`` (with or without the leading slash) among the bag's topics and check its type."""
    if name is None:
        return None
    cands = [name] if name.startswith('/') else [name, '/' + name]
    found = next((c for c in cands if c in topics), None)
    if found is None:
        raise BagError(f'bag {path} has no {role} topic {name!r}; available topics: '
                       + (', '.join(f'{t} ({m})' for t, m in sorted(topics.items())) or 'none'))
    if topics[found] not in allowed:
        raise BagError(f'topic {found} in bag {path} has type {topics[found]}; '
                       f'the {role} topic must be one of '
                       f'{allowed}')
    return found


def _rectified_intrinsics(info) -> np.ndarray:
    """The 3x3 intrinsics of a rectified image: ``P[:, :3]`` (image_geometry's rule), K when P is all zero."""
    P = np.asarray(info.p, np.float64)
    if P.size == 12 and P.any():
        return P.reshape(3, 4)[:, :3].copy()
    return np.asarray(info.k, np.float64).reshape(3, 3).copy()


def _stamp_ns(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def decode_image_msg(msg, msgtype: str) -> tuple[np.ndarray, str]:
    """``sensor_msgs/Image`` or ``CompressedImage`` -> (native array, encoding). Compressed images are
    decoded with OpenCV to rgb8 / mono8 / 16UC1 by content."""
    if msgtype == 'sensor_msgs/msg/CompressedImage':
        buf = np.asarray(msg.data, np.uint8)
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise ImageEncodingError(f'cannot decode compressed image (format {msg.format!r})')
        if img.ndim == 2:
            return img, ('16UC1' if img.dtype == np.uint16 else 'mono8')
        if img.shape[2] == 4:
            return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB), 'rgb8'
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), 'rgb8'
    arr = image_fields_to_array(msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step, msg.data)
    return arr, msg.encoding


def pose_from_msg(msg, msgtype: str) -> np.ndarray:
    """Pose-like message -> ``(4, 4)`` float64 (PoseStamped, PoseWithCovarianceStamped, TransformStamped,
    Odometry)."""
    if msgtype == 'geometry_msgs/msg/TransformStamped':
        t, q = msg.transform.translation, msg.transform.rotation
    else:
        pose = msg.pose if msgtype == 'geometry_msgs/msg/PoseStamped' else msg.pose.pose
        t, q = pose.position, pose.orientation
    return tq_to_pose([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])


def read_bag(path: str | Path, image_topic: str = DEFAULT_TOPICS['image'],
             camera_info_topic: str | None = DEFAULT_TOPICS['camera_info'], depth_topic: str | None = None,
             pose_topic: str | None = None, K: np.ndarray | None = None,
             pose_tolerance: float = 0.0) -> Iterator[Frame]:
    """Iterate the camera frames of a ROS 2 bag (topics are checked when called, frames read lazily).

    Args:
        path: bag directory (with metadata.yaml), sqlite3 or mcap storage.
        image_topic: ``sensor_msgs/Image`` (rgb8, bgr8, rgba8, bgra8, mono8) or ``CompressedImage`` topic.
        camera_info_topic: ``sensor_msgs/CameraInfo`` topic; may be None when ``K`` is given.
        depth_topic: optional ground-truth depth (32FC1 metres or 16UC1 millimetres), paired by exact stamp.
        pose_topic: optional ground-truth pose topic (see :data:`POSE_TYPES`), paired by exact stamp, or
            the nearest within ``pose_tolerance`` seconds.
        K: ``(3, 3)`` intrinsics overriding camera_info.

    Yields:
        :class:`Frame` in bag order of the images (index counts yielded frames). Frames whose depth
        comes later in the bag are yielded once it arrives; ``depth``/``pose`` are None when no message
        has the image's stamp.

    Raises:
        BagError: missing/corrupt bag, missing topics (the message lists the bag's topics and types),
            undecodable messages.
    """
    p = Path(path)
    topics = list_topics(p)  # validates eagerly, before the first frame is requested
    img_t = _resolve(topics, image_topic, 'image', IMAGE_TYPES, p)
    if camera_info_topic is None and K is None:
        raise BagError(f'reading bag {p} needs a camera_info topic or an explicit K')
    if K is not None:
        K = np.asarray(K, np.float64)
        if K.shape != (3, 3):
            raise ValueError(f'K must be 3x3, got {K.shape}')
    info_t = _resolve(topics, camera_info_topic, 'camera_info', ('sensor_msgs/msg/CameraInfo',), p) \
        if K is None else None
    depth_t = _resolve(topics, depth_topic, 'depth', ('sensor_msgs/msg/Image',), p)
    pose_t = _resolve(topics, pose_topic, 'pose', POSE_TYPES, p)
    return _frames(p, img_t, info_t, depth_t, pose_t, K, pose_tolerance)


def _frames(p: Path, img_t, info_t, depth_t, pose_t, K, pose_tolerance) -> Iterator[Frame]:
    reader = _open(p)
    try:
        yield from _iterate(reader, p, img_t, info_t, depth_t, pose_t, K, pose_tolerance)
    except (BagError, GeneratorExit):
        raise
    except Exception as e:  # corrupt storage, undecodable messages
        raise BagError(f'error while reading bag {p}: {type(e).__name__}: {e}') from e
    finally:
        reader.close()


def _iterate(reader, path: Path, img_t, info_t, depth_t, pose_t, K, pose_tolerance) -> Iterator[Frame]:
    by_topic = {}
    for c in reader.connections:
        by_topic.setdefault(c.topic, []).append(c)
    # pass 1: the small messages (camera_info, poses) and the set of depth stamps
    infos: dict[int, tuple] = {}
    poses: dict[int, np.ndarray] = {}
    pose_frames: dict[int, str] = {}
    depth_stamps: set[int] = set()
    small = [c for t in (info_t, pose_t, depth_t) if t for c in by_topic[t]]
    for conn, _, raw in reader.messages(connections=small):
        msg = reader.deserialize(raw, conn.msgtype)
        st = _stamp_ns(msg)
        if conn.topic == info_t:
            infos[st] = (_rectified_intrinsics(msg),
                         np.asarray(msg.d, np.float64).copy(),
                         msg.distortion_model, int(msg.width), int(msg.height))
        elif conn.topic == pose_t:
            poses[st] = pose_from_msg(msg, conn.msgtype)
            pose_frames[st] = str(getattr(getattr(msg, 'header', None), 'frame_id', '') or '')
        else:
            depth_stamps.add(st)
    if info_t and not infos:
        raise BagError(f'camera_info topic {info_t} of bag {path} has no messages')
    info_stamps = np.array(sorted(infos), np.int64)
    pose_stamps = np.array(sorted(poses), np.int64)

    def make_frame(index: int, stamp: int, msg, msgtype: str, depth) -> Frame:
        arr, enc = decode_image_msg(msg, msgtype)
        if enc in ('16UC1', 'mono16', '32FC1'):
            raise BagError(f'image topic {img_t} of bag {path} carries {enc} images; '
                           'expected colour or mono8')
        if K is not None:
            k, d, model = np.asarray(K, np.float64), np.zeros(0), 'plumb_bob'
        else:
            exact = infos.get(stamp)
            if exact is None:
                j = np.searchsorted(info_stamps, stamp, side='right') - 1
                exact = infos[int(info_stamps[max(j, 0)])]
            k, d, model, w, h = exact
            if (w, h) != (0, 0) and (w, h) != (arr.shape[1], arr.shape[0]):
                logger.warning('camera_info size %dx%d differs from image size %dx%d in %s', w, h,
                               arr.shape[1],
                               arr.shape[0], path)
        pose, pose_stamp = poses.get(stamp), stamp
        if pose is None and pose_tolerance > 0 and len(pose_stamps):
            j = int(np.argmin(np.abs(pose_stamps - stamp)))
            if abs(int(pose_stamps[j]) - stamp) <= pose_tolerance * 1e9:
                pose_stamp = int(pose_stamps[j])
                pose = poses[pose_stamp]
        return Frame(index=index, stamp=stamp * 1e-9, stamp_ns=stamp, image=to_rgb(arr, enc), K=k.copy(),
                     depth=depth, pose=None if pose is None else pose.copy(), frame_id=msg.header.frame_id,
                     encoding=enc, D=d, distortion_model=model,
                     pose_frame_id=pose_frames.get(pose_stamp, '') if pose is not None else '')

    # pass 2: images and depth in bag order; an image waits for a depth with its stamp if one exists
    pending_img: dict[int, tuple] = {}
    pending_depth: dict[int, np.ndarray] = {}
    index = 0
    big = [c for t in (img_t, depth_t) if t for c in by_topic[t]]
    for conn, _, raw in reader.messages(connections=big):
        msg = reader.deserialize(raw, conn.msgtype)
        st = _stamp_ns(msg)
        if conn.topic == img_t:
            if st not in depth_stamps:
                yield make_frame(index, st, msg, conn.msgtype, None)
                index += 1
            elif st in pending_depth:
                yield make_frame(index, st, msg, conn.msgtype, pending_depth.pop(st))
                index += 1
            else:
                pending_img[st] = (msg, conn.msgtype)
        else:
            arr, enc = decode_image_msg(msg, conn.msgtype)
            depth = depth_to_metres(arr, enc)
            if st in pending_img:
                m, mt = pending_img.pop(st)
                yield make_frame(index, st, m, mt, depth)
                index += 1
            else:
                pending_depth[st] = depth
    for st, (m, mt) in sorted(pending_img.items()):  # depth stamp seen in pass 1 but never decoded here
        yield make_frame(index, st, m, mt, None)
        index += 1


def read_bag_sequence(path: str | Path, **kwargs) -> Sequence:
    """All frames of a bag stacked into a :class:`Sequence` (see :func:`read_bag` for the arguments)."""
    frames = list(read_bag(path, **kwargs))
    if not frames:
        raise BagError(f'bag {path} has no images on the requested topic')
    return Sequence.from_frames(frames, metadata={'source': str(path)})
