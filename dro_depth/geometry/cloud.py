"""Depth map -> filtered 3-D points for a navigation cloud (one implementation for every node).

Pure numpy. The filter keeps a pixel of the decimated grid when it is finite and positive, its range
(Euclidean distance from the optical centre, metres) is in ``[min_range, max_range]``, its confidence is
at least ``min_confidence`` (when a confidence map is given), and it is not a flying pixel: the largest
relative depth jump ``|d_n - d| / d`` to its four full-resolution neighbours is at most
``edge_threshold`` (0 disables the edge test). Bilinear upsampling of a low-resolution depth puts
pixels between foreground and background at discontinuities; this test removes them.

How a node uses it (sfm_node, stereo_node, mono_depth_node)::

    from dro_depth.geometry.cloud import CloudFilter, filter_points
    from dro_depth.ros.conversions import points_to_pointcloud2
    cfg = CloudFilter.from_values(values)            # the node's points_* parameter values
    pts = filter_points(depth, K, cfg, confidence)   # CloudPoints: xyz (N, 3) float32, index (N,)
    msg = points_to_pointcloud2(pts, rgb, header)    # header = image stamp + optical frame

``rgb`` (optional) is the uint8 image the depth belongs to, at depth's size.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping, Tuple

import numpy as np

from dro_depth.errors import DroDepthError

__all__ = ['CloudFilter', 'CloudPoints', 'filter_points', 'keep_mask']


@dataclass(frozen=True)
class CloudFilter:
    """Which pixels become cloud points.

    Attributes:
        decimation: keep every n-th pixel in x and y (>= 1).
        min_range / max_range: metres, Euclidean distance from the optical centre.
        min_confidence: drop pixels whose confidence is below (ignored when no confidence map is given).
        edge_threshold: drop pixels whose largest relative depth jump to a 4-neighbour exceeds it; 0 = off.
    """

    decimation: int = 4
    min_range: float = 0.1
    max_range: float = 10.0
    min_confidence: float = 0.5
    edge_threshold: float = 0.05

    def __post_init__(self) -> None:
        if int(self.decimation) < 1:
            raise DroDepthError(f'points decimation must be >= 1, got {self.decimation}')
        if not 0.0 <= self.min_range < self.max_range:
            raise DroDepthError(f'need 0 <= points min_range < max_range, got {self.min_range}, '
                                f'{self.max_range}')
        if self.edge_threshold < 0:
            raise DroDepthError(f'points edge_threshold must be >= 0, got {self.edge_threshold}')

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> 'CloudFilter':
        """From node parameter values ``points_decimation``, ``points_min_range``, ``points_max_range``,
        ``points_min_confidence``, ``points_edge_threshold`` (missing names keep the defaults)."""
        d = cls()
        return cls(decimation=int(values.get('points_decimation', d.decimation)),
                   min_range=float(values.get('points_min_range', d.min_range)),
                   max_range=float(values.get('points_max_range', d.max_range)),
                   min_confidence=float(values.get('points_min_confidence', d.min_confidence)),
                   edge_threshold=float(values.get('points_edge_threshold', d.edge_threshold)))


@dataclass
class CloudPoints:
    """Filtered points.

    Attributes:
        xyz: float32 (N, 3), metres in the camera's optical frame, all finite.
        index: int64 (N,), flat index of each point's pixel in the full-resolution (H, W) depth map.
        shape: (H, W) of the depth map.
    """

    xyz: np.ndarray
    index: np.ndarray
    shape: Tuple[int, int]


@functools.lru_cache(maxsize=8)
def _grid_cached(shape: Tuple[int, int], K_bytes: bytes, n: int) -> Tuple[np.ndarray, ...]:
    K = np.frombuffer(K_bytes, dtype=np.float64).reshape(3, 3)
    v, u = np.mgrid[0:shape[0]:n, 0:shape[1]:n].astype(np.float64)
    ray_y = (v - K[1, 2]) / K[1, 1]
    ray_x = ((u - K[0, 2]) - K[0, 1] * ray_y) / K[0, 0]
    index = (v * shape[1] + u).astype(np.int64)
    with np.errstate(over='ignore'):              # absurd intrinsics: inf rays, rejected as non-finite
        norm = np.sqrt(1.0 + ray_x ** 2 + ray_y ** 2)
        return ray_x.astype(np.float32), ray_y.astype(np.float32), norm.astype(np.float32), index


def _max_relative_jump(depth: np.ndarray, n: int) -> np.ndarray:
    """float32 (h, w) on the decimated grid: max over the 4 full-res neighbours of |d_n - d| / d
    (NaN neighbours and borders count as no jump)."""
    H, W = depth.shape
    p = np.pad(depth, 1, mode='edge')
    c = p[1:H + 1:n, 1:W + 1:n]
    jump = np.zeros(c.shape, dtype=np.float32)
    with np.errstate(invalid='ignore', divide='ignore'):
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nb = p[1 + dy:H + 1 + dy:n, 1 + dx:W + 1 + dx:n]
            np.fmax(jump, np.abs(nb - c), out=jump)
        jump /= c
    return jump


def keep_mask(depth: np.ndarray, K: np.ndarray, cfg: CloudFilter,
              confidence: np.ndarray | None = None) -> np.ndarray:
    """bool (h, w) on the decimated grid ``depth[::n, ::n]``: True where a pixel becomes a point.

    Args:
        depth: float32 (H, W), metres along optical z, NaN / <= 0 invalid.
        K: (3, 3) intrinsics of ``depth``.
        cfg: the filter.
        confidence: float32 (H, W) in [0, 1], or None (no confidence test).
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise DroDepthError(f'depth must be (H, W), got shape {depth.shape}')
    n = int(cfg.decimation)
    _, _, norm, _ = _grid(depth.shape, K, n)
    d = depth[::n, ::n]
    with np.errstate(invalid='ignore', over='ignore'):
        r = d * norm
        keep = np.isfinite(r) & (d > 0) & (r >= cfg.min_range) & (r <= cfg.max_range)
        if confidence is not None:
            conf = np.asarray(confidence, dtype=np.float32)
            if conf.shape != depth.shape:
                raise DroDepthError(f'confidence shape {conf.shape} differs from depth shape {depth.shape}')
            keep &= conf[::n, ::n] >= cfg.min_confidence
        if cfg.edge_threshold > 0:
            keep &= _max_relative_jump(depth, n) <= cfg.edge_threshold
    return keep


def _grid(shape: Tuple[int, ...], K: np.ndarray, n: int) -> Tuple[np.ndarray, ...]:
    K = np.ascontiguousarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise DroDepthError(f'K must be 3x3, got shape {K.shape}')
    return _grid_cached((int(shape[0]), int(shape[1])), K.tobytes(), n)


def filter_points(depth: np.ndarray, K: np.ndarray, cfg: CloudFilter,
                  confidence: np.ndarray | None = None) -> CloudPoints:
    """Back-project the pixels :func:`keep_mask` keeps.

    Args:
        depth: float32 (H, W), metres along optical z, NaN / <= 0 invalid.
        K: (3, 3) intrinsics of ``depth``.
        cfg: the filter (ranges in metres: call it on metric depth only).
        confidence: float32 (H, W) in [0, 1], or None.

    Returns:
        CloudPoints with xyz float32 (N, 3), all finite, in the optical frame.
    """
    depth = np.asarray(depth, dtype=np.float32)
    keep = keep_mask(depth, K, cfg, confidence)
    ray_x, ray_y, _, index = _grid(depth.shape, K, int(cfg.decimation))
    z = depth[::cfg.decimation, ::cfg.decimation][keep]
    xyz = np.empty((z.size, 3), dtype=np.float32)
    np.multiply(ray_x[keep], z, out=xyz[:, 0])
    np.multiply(ray_y[keep], z, out=xyz[:, 1])
    xyz[:, 2] = z
    finite = np.isfinite(xyz).all(axis=1)           # a huge depth times a ray can overflow
    if not finite.all():
        return CloudPoints(xyz[finite], index[keep][finite], depth.shape)
    return CloudPoints(xyz, index[keep], depth.shape)
