"""ROS messages <-> numpy arrays: images, camera info, point clouds, poses, stamps.

Everything here is a plain function of messages and arrays (no node, no rclpy context), in the spirit of
cv_bridge and sensor_msgs_py, which the PyPI runtime lacks. Two rules keep it fast:

* reading: ``np.frombuffer(msg.data, ...)`` views the message's buffer, no copy per element;
* writing: ``msg.data = array.tobytes()``. Assigning a numpy array to ``msg.data`` makes rclpy check
  every element in Python (about 88 ms for a 640x480 depth image instead of about 1 ms).

Encodings follow ``sensor_msgs/image_encodings``. Depth images follow REP 118: ``32FC1`` metres along
the optical z axis, NaN where there is no estimate.
"""
from __future__ import annotations

import functools
import os
import sys
from typing import Optional, Tuple

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, Transform, Vector3
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from dro_depth.geometry import IntrinsicsError, PinholeCamera, quaternion_to_matrix
from dro_depth.geometry.cloud import CloudFilter, CloudPoints, filter_points
from dro_depth.geometry import matrix_to_quaternion as rotation_to_quaternion
from dro_depth.errors import DroDepthError

__all__ = [
    'ImageConversionError', 'UnsupportedEncodingError', 'COLOR_ENCODINGS',
    'check_image', 'image_to_rgb', 'rgb_to_image', 'float_to_image', 'image_to_float',
    'camera_from_info', 'camera_info_for', 'make_camera_info',
    'depth_to_pointcloud2', 'pointcloud2_to_array',
    'rotation_to_quaternion', 'matrix_to_pose', 'pose_to_matrix', 'matrix_to_transform',
    'stamp_to_ns', 'stamp_to_sec', 'ns_to_stamp',
]

# accepted colour encodings -> bytes per pixel
COLOR_ENCODINGS = {
    'rgb8': 3,
    'bgr8': 3,
    'mono8': 1,
    'rgba8': 4,
    'bgra8': 4,
}
_TO_RGB = {'bgr8': cv2.COLOR_BGR2RGB, 'rgba8': cv2.COLOR_RGBA2RGB, 'bgra8': cv2.COLOR_BGRA2RGB}
_HOST_BIG_ENDIAN = sys.byteorder == 'big'


class ImageConversionError(DroDepthError):
    """An image message is malformed (size, step and data length disagree)."""


class UnsupportedEncodingError(ImageConversionError):
    """An image message has an encoding this node does not accept."""


# ---------------------------------------------------------------------------------------------- images
def _layout(msg: Image, bytes_per_pixel: int) -> Tuple[int, int, int, int]:
    """(height, width, step, row bytes) once size, step and data length agree (O(1): nothing is read)."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ImageConversionError(f'image has no pixels ({w}x{h})')
    row_bytes = w * bytes_per_pixel
    if step < row_bytes:
        raise ImageConversionError(f'{msg.encoding} image step {step} is smaller than width x pixel size '
                                   f'({w} x {bytes_per_pixel} = {row_bytes})')
    # The last row may be unpadded, as some drivers send it.
    needed = step * (h - 1) + row_bytes
    size = len(msg.data)
    if size < needed:
        raise ImageConversionError(f'{msg.encoding} image {w}x{h} with step {step} needs {needed} bytes of '
                                   f'data, got {size}')
    return h, w, step, row_bytes


def check_image(msg: Image) -> None:
    """Everything :func:`image_to_rgb` checks, without reading a pixel (O(1), for a subscription callback).

    Raises:
        UnsupportedEncodingError: the encoding is not one of :data:`COLOR_ENCODINGS`.
        ImageConversionError: size, step and data length disagree.
    """
    channels = COLOR_ENCODINGS.get(msg.encoding.lower())
    if channels is None:
        raise UnsupportedEncodingError(
            f'unsupported image encoding {msg.encoding!r}: accepted are {", ".join(COLOR_ENCODINGS)}')
    _layout(msg, channels)


def _rows(msg: Image, bytes_per_pixel: int) -> np.ndarray:
    """The image's pixel bytes as [H, W * bytes_per_pixel] uint8, dropping any row padding (``step``)."""
    h, w, step, row_bytes = _layout(msg, bytes_per_pixel)
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if step == row_bytes:
        return buf[:h * row_bytes].reshape(h, row_bytes)
    full = np.lib.stride_tricks.as_strided(buf, shape=(h, row_bytes), strides=(step, 1), writeable=False)
    return full


@functools.lru_cache(maxsize=1)
def _cv_bridge():
    """A ``cv_bridge.CvBridge`` where a ROS distro provides one, else None (pip-only machines)."""
    if os.environ.get('DRO_DEPTH_NO_CV_BRIDGE'):
        return None
    try:
        from cv_bridge import CvBridge
        return CvBridge()
    except Exception:  # noqa: BLE001 - missing, or a broken non-ROS-2 copy
        return None


def image_to_rgb(msg: Image) -> np.ndarray:
    """Decode a colour or mono ``sensor_msgs/Image`` for the estimator.

    Args:
        msg: an image with encoding rgb8, bgr8, rgba8, bgra8 or mono8; any ``step`` padding.

    Returns:
        uint8 RGB [H, W, 3], or [H, W] for mono8 (the estimator repeats it), C-contiguous, owning its
        memory (independent of the message).

    Raises:
        UnsupportedEncodingError: any other encoding (e.g. 16UC1, yuv422, bayer_*).
        ImageConversionError: size, step and data length disagree.
    """
    encoding = msg.encoding.lower()
    channels = COLOR_ENCODINGS.get(encoding)
    if channels is None:
        raise UnsupportedEncodingError(
            f'unsupported image encoding {msg.encoding!r}: accepted are {", ".join(COLOR_ENCODINGS)}')
    bridge = _cv_bridge()
    if bridge is not None:     # a ROS distro: its cv_bridge decodes (the numpy path below is the fallback)
        try:
            out = bridge.imgmsg_to_cv2(msg, desired_encoding='mono8' if channels == 1 else 'rgb8')
        except Exception as exc:  # noqa: BLE001 - CvBridgeError and malformed buffers
            raise ImageConversionError(f'cv_bridge could not decode a {msg.encoding} image: {exc}') from exc
        return np.array(out, copy=True, order='C')
    rows = _rows(msg, channels)
    h, w = int(msg.height), int(msg.width)
    if channels == 1:
        return np.array(rows, copy=True)
    px = rows.reshape(h, w, channels)
    if encoding == 'rgb8':
        return np.array(px, copy=True, order='C')
    # OpenCV's SIMD channel shuffles are ~50x faster than numpy's strided copies at 640x480.
    return cv2.cvtColor(np.ascontiguousarray(px), _TO_RGB[encoding])    # bgr8 / bgra8: reverse the first three channels


def rgb_to_image(rgb: np.ndarray, encoding: str = 'rgb8', header: Optional[Header] = None,
                 row_padding: int = 0) -> Image:
    """Encode an RGB (or mono) uint8 array as a ``sensor_msgs/Image`` (for publishers, tests and demos).

    Args:
        rgb: uint8 [H, W, 3] RGB, or [H, W] grey for mono8.
        encoding: one of :data:`COLOR_ENCODINGS`.
        header: copied into the message.
        row_padding: extra bytes at the end of every row (``step = width * channels + row_padding``).
    """
    if encoding not in COLOR_ENCODINGS:
        raise UnsupportedEncodingError(
            f'cannot encode {encoding!r}: supported are {", ".join(COLOR_ENCODINGS)}')
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise TypeError(f'image must be uint8, got {rgb.dtype}')
    if encoding == 'mono8':
        px = rgb if rgb.ndim == 2 else np.round(rgb[..., :3].astype(np.float32) @
                                                np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
        px = px[:, :, None]
    else:
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f'{encoding} needs an [H, W, 3] RGB array, got shape {rgb.shape}')
        px = rgb if encoding.startswith('rgb') else rgb[:, :, ::-1]
        if encoding.endswith('a8'):
            px = np.concatenate([px, np.full(px.shape[:2] + (1,), 255, np.uint8)], axis=2)
    h, w, c = px.shape
    if row_padding:
        padded = np.zeros((h, w * c + row_padding), np.uint8)
        padded[:, :w * c] = px.reshape(h, w * c)
        px = padded
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=False, step=w * c + row_padding)
    if header is not None:
        msg.header = header
    msg.data = np.ascontiguousarray(px).tobytes()
    return msg


def float_to_image(values: np.ndarray, header: Optional[Header] = None) -> Image:
    """A float32 [H, W] array (depth in metres, confidence, ...) as a ``32FC1`` image in host byte order."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f'32FC1 images need an [H, W] array, got shape {values.shape}')
    values = np.ascontiguousarray(values, dtype=np.float32)
    h, w = values.shape
    msg = Image(height=h, width=w, encoding='32FC1', is_bigendian=_HOST_BIG_ENDIAN, step=w * 4)
    if header is not None:
        msg.header = header
    msg.data = values.tobytes()
    return msg


def image_to_float(msg: Image) -> np.ndarray:
    """Decode a ``32FC1`` image (either byte order, any step) to float32 [H, W] in host order."""
    if msg.encoding.upper() != '32FC1':        # encodings compare case-insensitively, as in image_to_rgb
        raise UnsupportedEncodingError(f'expected a 32FC1 image, got {msg.encoding!r}')
    rows = _rows(msg, 4)
    dtype = np.dtype('>f4' if msg.is_bigendian else '<f4')
    values = np.ascontiguousarray(rows).view(dtype).reshape(int(msg.height), int(msg.width))
    return values.astype(np.float32)


# ---------------------------------------------------------------------------------------------- cameras
def camera_from_info(info: CameraInfo, width: Optional[int] = None,
                     height: Optional[int] = None, rectified: bool = True) -> PinholeCamera:
    """The pinhole camera of the image that ``info`` describes, as delivered.

    A rectified image (the default, ``image_rect``) uses ``P[:, :3]``; ``rectified=False`` (an undistorted
    raw pipeline) uses ``K`` (see :meth:`PinholeCamera.from_camera_info`). Binning and a region of
    interest (as image_geometry applies them) are folded into K, so the camera
    matches the published image. If ``width``/``height`` (the image's size) are given they must agree.

    Raises:
        geometry.IntrinsicsError (ValueError): K is unusable (e.g. all zero: an uncalibrated camera), or
            the sizes of image and camera info disagree.
    """
    camera = PinholeCamera.from_camera_info(info, rectified=rectified)
    roi = info.roi
    if roi.width > 0 and roi.height > 0 and (roi.width, roi.height) != (camera.width, camera.height):
        camera = camera.cropped(int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))
    bx, by = max(int(info.binning_x), 1), max(int(info.binning_y), 1)
    if bx > 1 or by > 1:
        K = camera.K.copy()
        K[0, :] /= bx
        K[1, :] /= by
        camera = PinholeCamera(K, camera.width // bx, camera.height // by, camera.D, camera.frame_id)
    if width is not None and height is not None and (camera.width, camera.height) != (width, height):
        raise IntrinsicsError(f'camera_info describes a {camera.width}x{camera.height} image '
                              f'(after binning/roi) but the image is {width}x{height}')
    return camera


def make_camera_info(camera: PinholeCamera, header: Optional[Header] = None,
                     distortion_model: str = 'plumb_bob') -> CameraInfo:
    """A ``sensor_msgs/CameraInfo`` for a rectified pinhole camera (P = [K | 0], R = I)."""
    K = np.asarray(camera.K, dtype=np.float64)
    info = CameraInfo(width=int(camera.width), height=int(camera.height), distortion_model=distortion_model)
    if header is not None:
        info.header = header
    info.k = K.ravel().tolist()
    info.r = np.eye(3).ravel().tolist()
    P = np.zeros((3, 4))
    P[:, :3] = K
    info.p = P.ravel().tolist()
    D = np.zeros(5) if camera.D.size == 0 else camera.D
    info.d = [float(x) for x in D]
    return info


def camera_info_for(info: CameraInfo, header: Header, width: int, height: int) -> CameraInfo:
    """The camera info of an output image of ``width`` x ``height`` derived from input ``info``.

    Restamped with ``header``. When the input info already describes that size (no binning, no ROI) it
    is copied unchanged otherwise (P, R, D kept); else a rectified info is built from the effective
    camera, rescaled to the output size.
    """
    plain = int(info.binning_x) <= 1 and int(info.binning_y) <= 1 and \
        (int(info.roi.width) == 0 or (int(info.roi.width), int(info.roi.height)) == (info.width, info.height))
    if plain and (int(info.width), int(info.height)) == (width, height):
        out = CameraInfo(width=info.width, height=info.height, distortion_model=info.distortion_model,
                         d=info.d, k=info.k, r=info.r, p=info.p)
        out.header = header
        return out
    camera = camera_from_info(info)
    if (camera.width, camera.height) != (width, height):
        camera = camera.resized(width, height)
    return make_camera_info(camera, header, info.distortion_model or 'plumb_bob')


# ---------------------------------------------------------------------------------------------- clouds
_CLOUD_FIELDS = [
    PointField(name='x', offset=0, datatype=PointField.FLOAT32, count=1),
    PointField(name='y', offset=4, datatype=PointField.FLOAT32, count=1),
    PointField(name='z', offset=8, datatype=PointField.FLOAT32, count=1),
    PointField(name='rgb', offset=12, datatype=PointField.FLOAT32, count=1),
]


_XYZ_FIELDS = _CLOUD_FIELDS[:3]


def points_to_pointcloud2(points: CloudPoints, rgb: Optional[np.ndarray] = None,
                          header: Optional[Header] = None) -> PointCloud2:
    """Pack filtered points (:func:`dro_depth.geometry.cloud.filter_points`) as an unorganised cloud.

    Args:
        points: xyz float32 (N, 3) metres in the optical frame + each point's pixel index.
        rgb: uint8 (H, W, 3) (or (H, W) grey) image at the depth's size: adds an ``rgb`` field (the uint32
            0x00RRGGBB reinterpreted as float32, as RViz expects); None = fields x, y, z only.
        header: the image's stamp and the camera's optical frame.

    Returns:
        PointCloud2 with height 1, float32 x y z (+ rgb), ``is_dense`` True only when every point is finite.
    """
    xyz = np.asarray(points.xyz, dtype=np.float32)
    n = int(xyz.shape[0])
    if rgb is None:
        data, fields = np.ascontiguousarray(xyz), list(_XYZ_FIELDS)
    else:
        c = np.asarray(rgb)
        if c.shape[:2] != tuple(points.shape):
            raise DroDepthError(f'rgb shape {c.shape} does not match the depth shape {points.shape}')
        c = c.reshape(c.shape[0] * c.shape[1], -1)[points.index].astype(np.uint32)
        if c.shape[1] == 1:
            c = np.repeat(c, 3, axis=1)
        data = np.empty((n, 4), dtype=np.float32)
        data[:, :3] = xyz
        data.view(np.uint32)[:, 3] = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
        fields = list(_CLOUD_FIELDS)
    step = 4 * data.shape[1]
    msg = PointCloud2(height=1, width=n, fields=fields, is_bigendian=_HOST_BIG_ENDIAN, point_step=step,
                      row_step=step * n, is_dense=bool(np.isfinite(xyz).all()))
    if header is not None:
        msg.header = header
    msg.data = data.tobytes()
    return msg


def depth_to_pointcloud2(depth: np.ndarray, K: np.ndarray, rgb: Optional[np.ndarray] = None,
                         header: Optional[Header] = None, decimation: int = 1,
                         cloud_filter: Optional[CloudFilter] = None) -> PointCloud2:
    """Back-project a depth map into an unorganised ``PointCloud2`` with fields x, y, z, rgb.

    Args:
        depth: float32 [H, W], metres along optical z, NaN (or <= 0) where invalid: those pixels are skipped.
        K: 3x3 intrinsics of ``depth``.
        rgb: uint8 [H, W, 3] colours (or [H, W] grey); white when None.
        header: copied (frame = the camera's optical frame).
        decimation: keep every n-th pixel in x and y (ignored when ``cloud_filter`` is given).
        cloud_filter: the navigation filter (:class:`~dro_depth.geometry.cloud.CloudFilter`); None = only
            invalid pixels are dropped. No confidence here: use filter_points + points_to_pointcloud2.

    Returns:
        PointCloud2 with height 1, point_step 16; is_dense True only when every point is finite.
    """
    if decimation < 1:
        raise ValueError(f'decimation must be >= 1, got {decimation}')
    depth = np.asarray(depth, dtype=np.float32)
    if cloud_filter is None:
        cloud_filter = CloudFilter(decimation=decimation, min_range=0.0, max_range=float('inf'),
                                   edge_threshold=0.0)
    points = filter_points(depth, K, cloud_filter)
    if rgb is None:
        rgb = np.full(depth.shape + (3,), 255, dtype=np.uint8)
    return points_to_pointcloud2(points, rgb, header)


def pointcloud2_to_array(msg: PointCloud2) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Read a cloud made here: xyz float32 [N, 3] and rgb uint8 [N, 3] (None without an rgb field)."""
    names = [f.name for f in msg.fields]
    width = 4 if names[:4] == ['x', 'y', 'z', 'rgb'] else 3
    if names[:3] != ['x', 'y', 'z'] or msg.point_step != 4 * width:
        raise ValueError(f'expected fields x, y, z[, rgb] with point_step 12 or 16, got {names} / '
                         f'{msg.point_step}')
    n = int(msg.width) * int(msg.height)
    dtype = np.dtype('>f4' if msg.is_bigendian else '<f4')
    raw = np.frombuffer(msg.data, dtype=dtype, count=n * width).reshape(n, width).astype(np.float32)
    if width == 3:
        return raw.copy(), None
    packed = raw[:, 3].copy().view(np.uint32)
    rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.uint8)
    return raw[:, :3].copy(), rgb


# ---------------------------------------------------------------------------------------------- poses
def matrix_to_pose(T: np.ndarray) -> Pose:
    """A 4x4 rigid transform as ``geometry_msgs/Pose`` (quaternion x, y, z, w with w >= 0)."""
    T = np.asarray(T, dtype=np.float64)
    q = rotation_to_quaternion(T[:3, :3])
    t = T[:3, 3]
    return Pose(position=Point(x=float(t[0]), y=float(t[1]), z=float(t[2])),
                orientation=Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))


def matrix_to_transform(T: np.ndarray) -> Transform:
    """A 4x4 rigid transform as ``geometry_msgs/Transform``."""
    pose = matrix_to_pose(T)
    p = pose.position
    return Transform(translation=Vector3(x=p.x, y=p.y, z=p.z), rotation=pose.orientation)


def pose_to_matrix(pose: Pose) -> np.ndarray:
    """``geometry_msgs/Pose`` (or Transform) as a 4x4 float64 matrix."""
    if hasattr(pose, 'position'):
        t, q = pose.position, pose.orientation
    else:
        t, q = pose.translation, pose.rotation
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix([q.x, q.y, q.z, q.w])
    T[:3, 3] = [t.x, t.y, t.z]
    return T


# ---------------------------------------------------------------------------------------------- stamps
def stamp_to_ns(stamp: Time) -> int:
    """``builtin_interfaces/Time`` as integer nanoseconds (exact, usable as a dictionary key)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def stamp_to_sec(stamp: Time) -> float:
    """``builtin_interfaces/Time`` as float seconds (for the estimator; outputs reuse the original stamp)."""
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds as ``builtin_interfaces/Time``."""
    ns = int(ns)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
