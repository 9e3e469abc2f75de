"""Camera and rigid-motion geometry.

A pure pinhole camera model built from a CameraInfo-like record (in the spirit of image_geometry's
``PinholeCameraModel``), intrinsics rescaling for the network resolution, project/unproject, and SE(3)
helpers, including DRO's 6-vector pose convention.

Conventions:
    * Camera frames are optical frames (REP 103): x right, y down, z forward.
    * ``T_a_b`` is a 4x4 matrix that maps coordinates in frame ``b`` into frame ``a``: ``X_a = T_a_b X_b``.
    * DRO pose vectors are ``[tx, ty, tz, rx, ry, rz]`` (Euler angles in radians) with
      ``R = Rx(rx) @ Ry(ry) @ Rz(rz)``; the vector of reference ``n`` is ``T_ref_tgt``
      (``X_ref = R X_tgt + t``).
    * Quaternions are ``(x, y, z, w)`` as in geometry_msgs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dro_depth.errors import DroDepthError

__all__ = [
    'IntrinsicsError', 'PinholeCamera', 'validate_intrinsics',
    'pose_vec_to_matrix', 'invert_se3', 'matrix_to_quaternion', 'quaternion_to_matrix',
    'unproject_depth', 'project_points', 'rotation_angle', 'translation_norm',
]


class IntrinsicsError(DroDepthError):
    """Camera intrinsics or image size are invalid or inconsistent."""


#: Plausible focal lengths, as a multiple of the image's larger side (see :func:`validate_intrinsics`).
MIN_FOCAL_RATIO = 0.005
MAX_FOCAL_RATIO = 1000.0
#: The largest skew, as a fraction of fx, accepted as calibration round-off (treated as zero skew).
MAX_SKEW_RATIO = 1e-6


def validate_intrinsics(K: Any, width: int | None = None, height: int | None = None) -> np.ndarray:
    """Check a 3x3 pinhole matrix and return it as float64.

    Args:
        K: array-like of shape (3, 3) or 9 values, in pixels.
        width, height: image size the intrinsics belong to, checked against the principal point.

    Plausibility bounds (no camera has intrinsics outside them): focal lengths within
    [:data:`MIN_FOCAL_RATIO`, :data:`MAX_FOCAL_RATIO`] x the image's larger side (a field of view between
    about 0.06 and 179 degrees; without a size, within [1e-3, 1e8] px), an aspect ``fx / fy`` within
    [1/10, 10], and zero skew: DRO's warp has no skew term, so a skewed K would silently give wrong
    geometry; a skew below :data:`MAX_SKEW_RATIO` x fx (calibration round-off) is accepted as zero.

    Raises:
        IntrinsicsError: wrong shape, NaN/inf, non-positive or implausible focal lengths, skew, a
            malformed last row, or a principal point far outside the image (a K/size mismatch).
    """
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise IntrinsicsError(f'intrinsics are not numeric: {exc}') from None
    if K.size == 9:
        K = K.reshape(3, 3)
    if K.shape != (3, 3):
        raise IntrinsicsError(f'intrinsics must be 3x3 (or 9 values), got shape {K.shape}')
    if not np.all(np.isfinite(K)):
        raise IntrinsicsError(f'intrinsics contain NaN or inf: {K.tolist()}')
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if fx <= 0 or fy <= 0:
        raise IntrinsicsError(f'focal lengths must be positive, got fx={fx:g}, fy={fy:g} '
                              '(an all-zero K usually means an uncalibrated camera)')
    if not np.array_equal(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0.0:
        raise IntrinsicsError(f'intrinsics must have the form [[fx,0,cx],[0,fy,cy],[0,0,1]] (bottom row '
                              f'exactly 0, 0, 1), got {K.tolist()}')
    if abs(K[0, 1]) > MAX_SKEW_RATIO * fx:
        raise IntrinsicsError(f'skew K[0,1] = {K[0, 1]:g} is not supported (DRO warps without a skew term, '
                              'so depth and poses would be wrong): rectify to a zero-skew camera')
    if not 0.1 <= fx / fy <= 10.0:
        raise IntrinsicsError(f'focal lengths fx={fx:g}, fy={fy:g} differ by more than 10x: no camera has '
                              'such pixels (swapped or corrupted intrinsics)')
    if width is None or height is None:
        if not (1e-3 <= min(fx, fy) and max(fx, fy) <= 1e8):
            raise IntrinsicsError(f'focal lengths fx={fx:g}, fy={fy:g} px are outside [1e-3, 1e8]')
    if width is not None and height is not None:
        if width <= 0 or height <= 0:
            raise IntrinsicsError(f'image size must be positive, got {width}x{height}')
        side = max(width, height)
        if not (MIN_FOCAL_RATIO * side <= min(fx, fy) and max(fx, fy) <= MAX_FOCAL_RATIO * side):
            raise IntrinsicsError(
                f'focal lengths fx={fx:g}, fy={fy:g} px are implausible for a {width}x{height} image: '
                f'they must lie in [{MIN_FOCAL_RATIO:g}, {MAX_FOCAL_RATIO:g}] x {side} px (a field of view '
                'between about 0.06 and 179 degrees); the intrinsics are corrupted or for another image')
        # A principal point outside the image almost always means K belongs to another resolution.
        if not (-0.25 * width <= cx <= 1.25 * width and -0.25 * height <= cy <= 1.25 * height):
            raise IntrinsicsError(
                f'principal point ({cx:.1f}, {cy:.1f}) does not fit a {width}x{height} image: '
                'the intrinsics belong to another resolution (K/size mismatch)')
    return K


@dataclass(frozen=True)
class PinholeCamera:
    """A pinhole camera: intrinsics ``K`` (pixels) for an image of ``width`` x ``height``.

    Distortion coefficients are carried along but not applied: the network expects rectified images
    (``image_rect``), as image_proc produces.
    """

    K: np.ndarray
    width: int
    height: int
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    frame_id: str = ''

    def __post_init__(self) -> None:
        object.__setattr__(self, 'K', validate_intrinsics(self.K, self.width, self.height))
        object.__setattr__(self, 'width', int(self.width))
        object.__setattr__(self, 'height', int(self.height))
        object.__setattr__(self, 'D', np.asarray(self.D, dtype=np.float64).ravel())

    @classmethod
    def from_camera_info(cls, info: Any, rectified: bool = True) -> 'PinholeCamera':
        """Build from a ``sensor_msgs/CameraInfo`` (or any object with ``p``/``k``, width, height, d).

        The intrinsics follow image_geometry's rule: a rectified image (``image_rect``, what the
        networks expect) is projected with ``P[:, :3]``; ``K`` belongs to the raw, distorted image and is
        used only for an explicitly raw pipeline (``rectified=False``, undistorted images). A record
        without any ``p``/``P`` field (not a CameraInfo) falls back to ``K``.

        Raises:
            IntrinsicsError: the matrix used is unusable, e.g. an all-zero P (an uncalibrated camera).
        """
        matrix = None
        if rectified:
            p = _field(info, 'p', 'P')
            if p is not None:
                P = np.asarray(p, dtype=np.float64)
                if P.size != 12:
                    raise IntrinsicsError(f'camera_info P must have 12 values (3x4), got {P.size}')
                if not P.any():
                    raise IntrinsicsError(
                        'camera_info P is all zero: the rectified projection (focal lengths, centre) is '
                        'unknown; calibrate and rectify the camera (image_proc), or set rectified=False '
                        'for undistorted raw images described by K')
                matrix = P.reshape(3, 4)[:, :3]
        if matrix is None:
            matrix = np.asarray(_field(info, 'k', 'K'), dtype=np.float64).reshape(3, 3)
        d = _field(info, 'd', 'D')
        header = getattr(info, 'header', None)
        frame_id = getattr(header, 'frame_id', '') if header is not None else ''
        return cls(K=matrix, width=int(info.width), height=int(info.height),
                   D=np.asarray(() if d is None else d, dtype=np.float64), frame_id=frame_id)

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def resized(self, width: int, height: int) -> 'PinholeCamera':
        """The same camera for the image resized to ``width`` x ``height``.

        Pixel-centre convention: a pixel's centre (u + 0.5) scales with the image, so
        ``cx' = (cx + 0.5) * sx - 0.5``. This matches ``cv2.resize`` and bilinear interpolation with
        ``align_corners=False``.
        """
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, 0] *= sx
        K[0, 1] *= sx
        K[1, 1] *= sy
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return PinholeCamera(K, width, height, self.D, self.frame_id)

    def cropped(self, x0: int, y0: int, width: int, height: int) -> 'PinholeCamera':
        """The same camera for the crop with top-left corner (x0, y0) and the given size."""
        if x0 < 0 or y0 < 0 or x0 + width > self.width or y0 + height > self.height:
            raise IntrinsicsError(f'crop ({x0},{y0},{width}x{height}) is outside the '
                                  f'{self.width}x{self.height} image')
        K = self.K.copy()
        K[0, 2] -= x0
        K[1, 2] -= y0
        return PinholeCamera(K, width, height, self.D, self.frame_id)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project camera-frame points [..., 3] to pixels [..., 2] (points must have z > 0)."""
        return project_points(points, self.K)

    def unproject(self, depth: np.ndarray) -> np.ndarray:
        """Back-project a depth map [H, W] (metres along z) to camera-frame points [H, W, 3]."""
        if depth.shape != (self.height, self.width):
            raise IntrinsicsError(f'depth map is {depth.shape[1]}x{depth.shape[0]}, '
                                  f'camera is {self.width}x{self.height}')
        return unproject_depth(depth, self.K)


def _field(record: Any, lower: str, upper: str) -> Any:
    """``record.lower`` (ROS 2 names) or ``record.upper`` (ROS 1 names), None when neither exists."""
    value = getattr(record, lower, None)
    return getattr(record, upper, None) if value is None else value


def project_points(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of points [..., 3] with intrinsics K [3, 3]; returns pixels [..., 2]."""
    p = np.asarray(points, dtype=np.float64)
    uvw = p @ np.asarray(K, dtype=np.float64).T
    return uvw[..., :2] / uvw[..., 2:3]


def unproject_depth(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Back-project depth [H, W] (metres along optical z) into points [H, W, 3]; NaN stays NaN."""
    h, w = depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    u = np.arange(w, dtype=np.float64)[None, :]
    v = np.arange(h, dtype=np.float64)[:, None]
    z = depth.astype(np.float64)
    x = (u - cx - K[0, 1] * (v - cy) / fy) / fx * z
    y = (v - cy) / fy * z
    return np.stack([x, y, z], axis=-1)


def _rot_x(a: torch.Tensor) -> torch.Tensor:
    c, s, o, z = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(*a.shape, 3, 3)


def _rot_y(a: torch.Tensor) -> torch.Tensor:
    c, s, o, z = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(*a.shape, 3, 3)


def _rot_z(a: torch.Tensor) -> torch.Tensor:
    c, s, o, z = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(*a.shape, 3, 3)


def pose_vec_to_matrix(vec: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """DRO pose vectors [..., 6] = [tx, ty, tz, rx, ry, rz] to 4x4 matrices [..., 4, 4].

    ``R = Rx(rx) @ Ry(ry) @ Rz(rz)``, translation unscaled. The result is ``T_ref_tgt``.
    Numpy in gives numpy (float64) out.
    """
    is_np = isinstance(vec, np.ndarray)
    v = torch.as_tensor(vec, dtype=torch.float64) if is_np else vec
    if v.shape[-1] != 6:
        raise ValueError(f'pose vectors must have 6 values in the last dimension, got shape {tuple(v.shape)}')
    R = _rot_x(v[..., 3]) @ _rot_y(v[..., 4]) @ _rot_z(v[..., 5])
    T = torch.zeros(*v.shape[:-1], 4, 4, dtype=v.dtype, device=v.device)
    T[..., :3, :3] = R
    T[..., :3, 3] = v[..., :3]
    T[..., 3, 3] = 1.0
    return T.numpy() if is_np else T


def invert_se3(T: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms [..., 4, 4] (closed form, no general matrix inverse)."""
    T = np.asarray(T, dtype=np.float64)
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    out = np.zeros_like(T)
    Rt = np.swapaxes(R, -1, -2)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ t
    out[..., 3, 3] = 1.0
    return out


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation matrices -> ``(..., 4)`` unit quaternions (x, y, z, w), ``w >= 0``.

    Uses the numerically stable branch on the largest diagonal term (Shepperd's method).
    """
    R = np.asarray(R, np.float64)
    if R.shape[-2:] != (3, 3):
        raise ValueError(f'rotation matrices must be (..., 3, 3), got {R.shape}')
    flat = R.reshape(-1, 3, 3)
    out = np.empty((len(flat), 4))
    for i, m in enumerate(flat):
        tr = np.trace(m)
        if tr > 0:
            s = 2.0 * np.sqrt(tr + 1.0)
            q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
        elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
            q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
        elif m[1, 1] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
            q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
        else:
            s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
            q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
        q = np.asarray(q)
        q /= np.linalg.norm(q)
        out[i] = -q if q[3] < 0 else q
    return out.reshape(R.shape[:-2] + (4,))


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` quaternions (x, y, z, w) -> ``(..., 3, 3)`` rotation matrices (normalised first)."""
    q = np.asarray(q, np.float64)
    if q.shape[-1] != 4:
        raise ValueError(f'quaternions must have 4 components (x, y, z, w), got shape {q.shape}')
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(n < 1e-12) or not np.all(np.isfinite(q)):
        raise ValueError('quaternions must be finite and non-zero')
    x, y, z, w = np.moveaxis(q / n, -1, 0)
    R = np.empty(q.shape[:-1] + (3, 3))
    R[..., 0, 0] = 1 - 2 * (y * y + z * z)
    R[..., 0, 1] = 2 * (x * y - z * w)
    R[..., 0, 2] = 2 * (x * z + y * w)
    R[..., 1, 0] = 2 * (x * y + z * w)
    R[..., 1, 1] = 1 - 2 * (x * x + z * z)
    R[..., 1, 2] = 2 * (y * z - x * w)
    R[..., 2, 0] = 2 * (x * z - y * w)
    R[..., 2, 1] = 2 * (y * z + x * w)
    R[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return R


def rotation_angle(T: np.ndarray) -> float:
    """Rotation angle (radians) of a rigid transform or rotation matrix."""
    R = np.asarray(T)[:3, :3]
    c = (np.trace(R) - 1.0) / 2.0
    return float(np.arccos(np.clip(c, -1.0, 1.0)))


def translation_norm(T: np.ndarray) -> float:
    """Length of a rigid transform's translation."""
    return float(np.linalg.norm(np.asarray(T)[:3, 3]))
