"""Geometry on real images: Middlebury 2014 Motorcycle (scikit-image), metric GT depth and baseline."""
import numpy as np
import pytest
import torch

from dro_depth.data.middlebury import load_motorcycle
from dro_depth.geometry import warp_to_target


@pytest.fixture(scope='module')
def pair():
    return load_motorcycle()


def _photometric_error(pair, T_right_left, depth=None):
    left = torch.from_numpy(pair.left).permute(2, 0, 1)[None].double() / 255
    right = torch.from_numpy(pair.right).permute(2, 0, 1)[None].double() / 255
    d = torch.from_numpy(np.nan_to_num(pair.depth_left if depth is None else depth, nan=0.0))[None, None].double()
    K_l = torch.from_numpy(pair.K_left)[None]
    K_r = torch.from_numpy(pair.K_right)[None]
    warped, valid = warp_to_target(right, d, K_l, K_r, torch.from_numpy(T_right_left)[None])
    err = (warped - left).abs().mean(1, keepdim=True)
    return float(err[valid].mean()), float(valid.double().mean())


def test_gt_depth_and_baseline_explain_the_pair(pair):
    assert pair.left.shape == (500, 741, 3)
    finite = np.isfinite(pair.depth_left)
    assert 0.85 < finite.mean() < 1.0
    # Metric depth of a motorcycle photographed from ~1-3 m.
    assert 0.5 < np.nanmedian(pair.depth_left) < 5.0
    err_gt, cover = _photometric_error(pair, pair.T_right_left)
    assert cover > 0.8
    no_motion, _ = _photometric_error(pair, np.eye(4))
    wrong_sign = pair.T_right_left.copy()
    wrong_sign[0, 3] *= -1
    err_wrong, _ = _photometric_error(pair, wrong_sign)
    half_depth, _ = _photometric_error(pair, pair.T_right_left, pair.depth_left * 0.5)
    # Warping with the true depth and baseline must explain the pair far better than alternatives.
    assert err_gt < 0.6 * no_motion
    assert err_gt < 0.6 * err_wrong
    assert err_gt < 0.6 * half_depth
    assert err_gt < 0.06


def test_disparity_depth_relation(pair):
    d = pair.disparity_left
    z = pair.depth_left
    ok = np.isfinite(d)
    np.testing.assert_allclose(z[ok] * (d[ok] + 31.086), 994.978 * pair.baseline, rtol=1e-5)
