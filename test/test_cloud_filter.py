"""The navigation cloud filter (dro_depth.geometry.cloud) and its PointCloud2 packing."""
import math

import numpy as np
import pytest

from dro_depth.errors import DroDepthError
from dro_depth.geometry.cloud import CloudFilter, filter_points, keep_mask

K = np.array([[100.0, 0, 31.5], [0, 100.0, 23.5], [0, 0, 1]])
OFF = dict(min_range=0.0, max_range=math.inf, edge_threshold=0.0, min_confidence=0.0)


def _step_depth(upsample=True):
    """Two planes (2 m left, 4 m right); upsampled from half resolution, which leaves flying pixels."""
    low = np.full((24, 32), 2.0, np.float32)
    low[:, 16:] = 4.0
    if not upsample:
        return np.kron(low, np.ones((2, 2), np.float32)), np.kron(low, np.ones((2, 2), np.float32))
    import cv2
    return cv2.resize(low, (64, 48), interpolation=cv2.INTER_LINEAR), np.kron(low, np.ones((2, 2), np.float32))


def test_edge_filter_drops_flying_pixels_and_keeps_planes():
    depth, gt = _step_depth()
    flying = (depth > 2.05) & (depth < 3.95)
    assert flying.any()
    raw = filter_points(depth, K, CloudFilter(decimation=1, **OFF))
    filt = filter_points(depth, K, CloudFilter(decimation=1, **{**OFF, 'edge_threshold': 0.05}))
    assert np.isin(np.flatnonzero(flying), raw.index).all()
    assert not np.isin(np.flatnonzero(flying), filt.index).any(), 'a flying pixel survived the edge filter'
    err_raw = np.abs(raw.xyz[:, 2] - gt.ravel()[raw.index]) / gt.ravel()[raw.index]
    err = np.abs(filt.xyz[:, 2] - gt.ravel()[filt.index]) / gt.ravel()[filt.index]
    assert np.mean(err_raw <= 0.05) < 1.0 and np.mean(err <= 0.05) == 1.0
    assert len(filt.index) > 0.8 * depth.size


def test_back_projection_range_and_confidence():
    depth = np.full((48, 64), 3.0, np.float32)
    depth[0, 0] = np.nan
    depth[1, 1] = -1.0
    depth[2, 2] = 3.4e38                  # finite depth whose range overflows float32
    conf = np.ones_like(depth)
    conf[10, :] = 0.2
    pts = filter_points(depth, K, CloudFilter(decimation=1, **{**OFF, 'min_confidence': 0.5}), conf)
    assert np.isfinite(pts.xyz).all()
    assert not np.isin([0, 65, 130], pts.index).any()
    assert not np.isin(np.arange(640, 704), pts.index).any()
    v, u = np.divmod(pts.index, 64)
    np.testing.assert_allclose(pts.xyz[:, 0], (u - 31.5) / 100 * 3.0, rtol=1e-5)
    np.testing.assert_allclose(pts.xyz[:, 1], (v - 23.5) / 100 * 3.0, rtol=1e-5)
    r = np.linalg.norm(pts.xyz, axis=1)
    near = filter_points(depth, K, CloudFilter(decimation=2, **{**OFF, 'max_range': 3.1}))
    assert np.all(np.linalg.norm(near.xyz, axis=1) <= 3.1) and len(near.index) < (r <= 3.1).sum()
    far = filter_points(depth, K, CloudFilter(decimation=1, **{**OFF, 'min_range': 3.2}))
    assert np.all(np.linalg.norm(far.xyz, axis=1) >= 3.2) and len(far.index) > 0
    assert keep_mask(depth, K, CloudFilter(decimation=4, **OFF)).shape == (12, 16)


def test_bad_settings_and_shapes_are_package_errors():
    with pytest.raises(DroDepthError, match='min_range'):
        CloudFilter(min_range=5.0, max_range=2.0)
    with pytest.raises(DroDepthError, match='decimation'):
        CloudFilter(decimation=0)
    with pytest.raises(DroDepthError, match='confidence shape'):
        filter_points(np.ones((4, 4), np.float32), K, CloudFilter(), np.ones((3, 4), np.float32))


def test_pointcloud2_fields_density_and_colour():
    pytest.importorskip('sensor_msgs.msg')
    from dro_depth.ros.conversions import depth_to_pointcloud2, pointcloud2_to_array, points_to_pointcloud2
    depth, _ = _step_depth(upsample=False)
    rgb = np.zeros(depth.shape + (3,), np.uint8)
    rgb[..., 0] = np.arange(64, dtype=np.uint8)[None, :]
    pts = filter_points(depth, K, CloudFilter(decimation=2))
    msg = points_to_pointcloud2(pts, rgb)
    xyz, col = pointcloud2_to_array(msg)
    assert msg.is_dense and [f.name for f in msg.fields] == ['x', 'y', 'z', 'rgb'] and msg.width == len(xyz)
    np.testing.assert_array_equal(xyz, pts.xyz)
    np.testing.assert_array_equal(col[:, 0], pts.index % 64)
    bare = points_to_pointcloud2(pts, None)
    assert [f.name for f in bare.fields] == ['x', 'y', 'z'] and bare.point_step == 12
    np.testing.assert_array_equal(pointcloud2_to_array(bare)[0], pts.xyz)
    legacy = depth_to_pointcloud2(depth, K, None, decimation=4)
    assert legacy.is_dense and legacy.width == 12 * 16
    bad = pts.xyz.copy()
    bad[0, 0] = np.nan
    pts.xyz = bad
    assert not points_to_pointcloud2(pts, None).is_dense, 'is_dense must be false when a point is NaN'
