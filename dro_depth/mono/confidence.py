"""A per-pixel confidence for single-image depth: agreement with the prediction on the mirrored image.

Depth Anything V2 has no confidence output. Mirroring the image left-right is a symmetry of the task, so a
pixel whose depth changes when the image is mirrored is one the network is unsure of (textureless areas,
thin structures, depth edges). This costs a second network pass and is used only when asked for
(``mono_depth_node`` parameter ``points_min_confidence`` > 0).
"""
from __future__ import annotations

import numpy as np

from dro_depth.errors import DroDepthError

__all__ = ['flip_consistency', 'mirrored_depth']


def mirrored_depth(estimator, image: np.ndarray) -> np.ndarray:
    """``float32 (H, W)`` metres: the estimator's depth of the left-right mirrored ``uint8 (H, W, 3)`` image,
    mirrored back so it lines up with ``image``.

    Raises:
        DroDepthError: the estimator is not metric (relative outputs have no common scale to compare).
    """
    pred = estimator.predict(np.ascontiguousarray(image[:, ::-1]))
    if pred.depth is None:
        raise DroDepthError('flip consistency needs a metric checkpoint (relative outputs are '
                            'affine-invariant)')
    return np.ascontiguousarray(pred.depth[:, ::-1])


def flip_consistency(depth: np.ndarray, mirrored: np.ndarray, tolerance: float = 0.1) -> np.ndarray:
    """Confidence in [0, 1] from two depth maps of one image.

    Args:
        depth: float32 (H, W), metres, NaN / <= 0 invalid.
        mirrored: float32 (H, W), metres: :func:`mirrored_depth` of the same image.
        tolerance: relative disagreement at which confidence falls to 1/e.

    Returns:
        float32 (H, W): ``exp(-|depth - mirrored| / depth / tolerance)``; 0 where either is invalid.
    """
    depth = np.asarray(depth, dtype=np.float32)
    mirrored = np.asarray(mirrored, dtype=np.float32)
    if depth.shape != mirrored.shape or depth.ndim != 2:
        raise DroDepthError(f'depth {depth.shape} and mirrored depth {mirrored.shape} must be the same '
                            '(H, W)')
    if not tolerance > 0:
        raise DroDepthError(f'tolerance must be > 0, got {tolerance}')
    with np.errstate(invalid='ignore', divide='ignore', over='ignore'):
        rel = np.abs(depth - mirrored) / depth
        conf = np.exp(-rel / np.float32(tolerance)).astype(np.float32)
    conf[~((depth > 0) & (mirrored > 0) & np.isfinite(conf))] = 0.0
    return conf
