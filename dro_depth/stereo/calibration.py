"""Rectified stereo calibration from the two projection matrices (ROS ``CameraInfo.P``, REP 104).

For a rectified pair the right camera's ``P[0, 3] = -fx * B`` (B the baseline in metres, positive when the
right camera is to the right of the left one); the left one has ``P[0, 3] = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dro_depth.errors import DroDepthError

__all__ = ['StereoCalibration', 'StereoCalibrationError']

_TOL = 1e-6


class StereoCalibrationError(DroDepthError):
    """The camera pair is not a usable rectified, horizontal stereo pair."""


@dataclass(frozen=True)
class StereoCalibration:
    """Rectified horizontal stereo geometry of the left view.

    Attributes:
        fx, fy, cx, cy: left rectified intrinsics (pixels).
        baseline: metres, > 0.
        doffs: ``cx_right - cx_left`` (pixels); depth = ``fx * B / (d + doffs)``.
        width, height: image size the calibration is for.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    baseline: float
    doffs: float = 0.0
    width: int = 0
    height: int = 0

    @property
    def K(self) -> np.ndarray:
        """float64 (3, 3) left intrinsics."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def depth_from_disparity(self, disparity: np.ndarray, min_disparity: float = 0.0) -> np.ndarray:
        """float32 (H, W) metres from disparity (pixels); NaN where ``d + doffs <= min_disparity`` or not
        finite (REP 118: NaN = no measurement)."""
        d = np.asarray(disparity, np.float32) + np.float32(self.doffs)
        with np.errstate(divide='ignore', invalid='ignore'):
            depth = np.float32(self.fx * self.baseline) / d
        return np.where(np.isfinite(d) & (d > max(min_disparity, 0.0)), depth, np.nan).astype(np.float32)

    def disparity_from_depth(self, depth: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`depth_from_disparity`: float32 (H, W) left-view disparity
        ``fx * B / Z - doffs`` (pixels) of a depth image (metres); NaN where the depth is not finite or
        <= 0, or the disparity is not > 0."""
        z = np.asarray(depth, np.float64)
        with np.errstate(divide='ignore', invalid='ignore'):
            d = self.fx * self.baseline / z - self.doffs
        return np.where(np.isfinite(z) & (z > 0) & np.isfinite(d) & (d > 0), d, np.nan).astype(np.float32)

    @classmethod
    def from_projections(cls, P_left: np.ndarray, P_right: np.ndarray, R_left: np.ndarray | None = None,
                         R_right: np.ndarray | None = None, width: int = 0, height: int = 0,
                         check_rectified: bool = True) -> StereoCalibration:
        """Build from ``CameraInfo.P`` (3x4, row-major 12 values accepted) of both cameras.

        Args:
            P_left, P_right: projection matrices. R_left, R_right: rectification rotations (must be the
                identity when ``check_rectified``: the images are already rectified).
            width, height: image size.

        Raises:
            StereoCalibrationError: naming the value and the rule (zero/negative or non-horizontal baseline,
            different rectified intrinsics or rows, R not identity, fx <= 0).
        """
        Pl = np.asarray(P_left, np.float64).reshape(3, 4)
        Pr = np.asarray(P_right, np.float64).reshape(3, 4)
        fx, fy, cx, cy = Pl[0, 0], Pl[1, 1], Pl[0, 2], Pl[1, 2]
        if not (fx > 0 and fy > 0):
            raise StereoCalibrationError(f'left P has fx={fx}, fy={fy}: must be > 0 (camera_info not set?)')
        if check_rectified:
            for side, R in (('left', R_left), ('right', R_right)):
                if R is not None and not np.allclose(np.asarray(R, np.float64).reshape(3, 3), np.eye(3),
                                                     atol=1e-6):
                    raise StereoCalibrationError(
                        f'{side} camera_info R is not the identity ({np.asarray(R).reshape(-1).round(4)}): '
                        'the images are not rectified; feed image_rect from a rectifying node')
        if not (np.isclose(Pr[0, 0], fx, rtol=1e-6) and np.isclose(Pr[1, 1], fy, rtol=1e-6)
                and np.isclose(Pr[1, 2], cy, atol=1e-3)):
            raise StereoCalibrationError(
                f'left/right rectified intrinsics differ (fx {fx} vs {Pr[0, 0]}, fy {fy} vs {Pr[1, 1]}, '
                f'cy {cy} vs {Pr[1, 2]}): not a row-aligned rectified pair')
        if abs(Pr[1, 3] - Pl[1, 3]) > _TOL * max(1.0, fx) or abs(Pr[2, 3] - Pl[2, 3]) > _TOL:
            raise StereoCalibrationError(
                f'right P has Ty={Pr[1, 3]}, Tz={Pr[2, 3]}: the baseline is not horizontal '
                '(vertical stereo is not supported)')
        baseline = -(Pr[0, 3] - Pl[0, 3]) / fx + 0.0  # + 0.0: no '-0'
        if not baseline > 0:
            raise StereoCalibrationError(
                f'baseline {baseline:.6g} m from right P[0,3]={Pr[0, 3]} (= -fx*B): must be > 0; '
                'are left and right swapped, or is the right camera_info missing Tx?')
        return cls(fx=float(fx), fy=float(fy), cx=float(cx), cy=float(cy), baseline=float(baseline),
                   doffs=float(Pr[0, 2] - cx), width=int(width), height=int(height))
