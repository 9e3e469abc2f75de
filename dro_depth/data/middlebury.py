"""The Middlebury 2014 Motorcycle stereo pair shipped with scikit-image, with metric ground truth.

``skimage.data.stereo_motorcycle()`` gives the pair down-sampled by 4, with ground-truth disparity (inf/NaN
where unknown). Its documented calibration at that size: f = 994.978 px, left principal point
(311.193, 254.877), the right camera's principal point shifted by doffs = 31.086 px in x, baseline
193.001 mm. Depth is ``Z = f * B / (d + doffs)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ['StereoPair', 'load_motorcycle']

FOCAL = 994.978
CX, CY = 311.193, 254.877
DOFFS = 31.086
BASELINE_M = 0.193001


@dataclass
class StereoPair:
    """A rectified stereo pair with metric ground truth for the left view."""

    left: np.ndarray          # uint8 [H, W, 3]
    right: np.ndarray         # uint8 [H, W, 3]
    depth_left: np.ndarray    # float32 [H, W] metres, NaN where unknown
    disparity_left: np.ndarray  # float32 [H, W] pixels, NaN where unknown
    K_left: np.ndarray        # float64 [3, 3]
    K_right: np.ndarray
    T_right_left: np.ndarray  # float64 [4, 4]: X_right = T_right_left X_left
    baseline: float           # metres


def load_motorcycle() -> StereoPair:
    """Load the scikit-image copy of Middlebury 2014 Motorcycle (no download needed)."""
    from skimage.data import stereo_motorcycle

    left, right, disp = stereo_motorcycle()
    disp = np.asarray(disp, dtype=np.float32)
    disp = np.where(np.isfinite(disp), disp, np.nan).astype(np.float32)
    depth = (FOCAL * BASELINE_M / (disp + DOFFS)).astype(np.float32)
    K_left = np.array([[FOCAL, 0.0, CX], [0.0, FOCAL, CY], [0.0, 0.0, 1.0]])
    K_right = K_left.copy()
    K_right[0, 2] += DOFFS
    T = np.eye(4)
    T[0, 3] = -BASELINE_M
    return StereoPair(left=left, right=right, depth_left=depth, disparity_left=disp, K_left=K_left,
                      K_right=K_right, T_right_left=T, baseline=BASELINE_M)
