"""The streaming estimator over generated sequences: outputs, keyframes, resets, static camera, bad input."""
import logging
import warnings

import numpy as np
import pytest
import torch

from dro_depth.data.synthetic import generate_sequence
from dro_depth.sfm.estimator import EstimatorConfig, InputError, SfmEstimator, TrackingState
from dro_depth.geometry import IntrinsicsError
from dro_depth.models.dro import build_dro


@pytest.fixture(scope='module')
def seq():
    return generate_sequence('indoor', seed=11, n_frames=30, height=120, width=160)


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return build_dro()


def make(model, **kw):
    cfg = dict(width=96, height=64, iterations=2, device='cpu')
    cfg.update(kw)
    return SfmEstimator(EstimatorConfig(**cfg), model=model)


def test_thirty_frames_without_warnings(seq, model, caplog):
    est = make(model)
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        results = [est.track(seq.images[i], seq.K, seq.stamps[i]) for i in range(len(seq))]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert results[0].state is TrackingState.INITIALIZING and results[0].is_keyframe
    assert results[0].num_refs == 0 and results[1].num_refs == 1
    assert max(r.num_refs for r in results) == 2
    for r, stamp in zip(results, seq.stamps):
        assert r.stamp == stamp
        assert r.depth.shape == (120, 160) and r.depth.dtype == np.float32
        assert r.confidence.shape == (120, 160)
        finite = np.isfinite(r.depth)
        assert np.all(r.depth[finite] >= 0.1) and np.all(r.depth[finite] <= 80.0)
        assert np.all((r.confidence >= 0) & (r.confidence <= 1))
        assert np.all(r.confidence[~finite] == 0)
        assert r.T_world_cam.shape == (4, 4) and np.all(np.isfinite(r.T_world_cam))
        np.testing.assert_allclose(r.T_world_cam[:3, :3] @ r.T_world_cam[:3, :3].T, np.eye(3), atol=1e-9)
        assert r.covariance.shape == (6, 6) and np.all(np.linalg.eigvalsh(r.covariance) >= 0)
        assert {'preprocess', 'features', 'total'} <= set(r.timings)
    # Tracked frames accumulate covariance (odometry uncertainty grows).
    tracked = [r for r in results if r.state is not TrackingState.LOST]
    assert np.trace(tracked[-1].covariance) > np.trace(tracked[1].covariance)


def test_time_backwards_and_gap_reset(seq, model):
    est = make(model)
    for i in range(3):
        est.track(seq.images[i], seq.K, seq.stamps[i])
    pose_before = est.T_world_cam
    r = est.track(seq.images[3], seq.K, seq.stamps[0] - 1.0)
    assert r.reset and 'backwards' in r.reason and r.state is TrackingState.INITIALIZING
    # The trajectory continues from the last pose: no jump in odometry.
    np.testing.assert_allclose(r.T_world_cam, pose_before)
    r = est.track(seq.images[4], seq.K, seq.stamps[0] + 100.0)
    assert r.reset and 'gap' in r.reason
    with pytest.raises(InputError, match='duplicate'):
        est.track(seq.images[5], seq.K, seq.stamps[0] + 100.0)


def test_static_camera_holds_position(seq, model):
    est = make(model, static_baseline_ratio=10.0)    # every baseline counts as static
    states = [est.track(seq.images[0], seq.K, seq.stamps[0] + 0.1 * i).state for i in range(5)]
    assert states[0] is TrackingState.INITIALIZING
    assert all(s is TrackingState.STATIC for s in states[1:])
    np.testing.assert_allclose(est.T_world_cam[:3, 3], 0.0, atol=1e-12)
    # A static camera adds no keyframes beyond the first (its views would have no baseline).
    assert len(est.window) == 1


@pytest.mark.parametrize('K, match', [
    (np.full((3, 3), np.nan), 'NaN'),
    (np.zeros((3, 3)), 'positive'),
    (np.eye(4), '3x3'),
    (np.array([[100.0, 0, 600], [0, 100, 400], [0, 0, 1]]), 'mismatch'),
])
def test_bad_intrinsics(seq, model, K, match):
    est = make(model)
    with pytest.raises(IntrinsicsError, match=match):
        est.track(seq.images[0], K, seq.stamps[0])


@pytest.mark.parametrize('image, match', [
    (np.zeros((120, 160, 3), np.float32), 'uint8'),
    (np.zeros((120, 160, 4), np.uint8), 'H x W x 3'),
    (np.zeros((8, 8, 3), np.uint8), 'too small'),
    ('not an image', 'numpy array'),
    (torch.zeros(120, 160, 3, dtype=torch.uint8), 'torch tensor'),
])
def test_bad_images(seq, model, image, match):
    est = make(model)
    with pytest.raises(InputError, match=match):
        est.track(image, seq.K, seq.stamps[0])


def test_bad_stamp_and_config(seq, model):
    est = make(model)
    with pytest.raises(InputError, match='finite'):
        est.track(seq.images[0], seq.K, float('nan'))
    with pytest.raises(ValueError, match='multiple of 16'):
        EstimatorConfig(width=100).validate()
    with pytest.raises(ValueError, match='iterations'):
        est.iterations = -1
    est.iterations = 0
    r = est.track(seq.images[0], seq.K, seq.stamps[0])
    r = est.track(seq.images[1], seq.K, seq.stamps[1])
    assert r.iterations == 0 and np.isfinite(r.depth).any()


def test_camera_change_resets(seq, model):
    est = make(model)
    est.track(seq.images[0], seq.K, seq.stamps[0])
    est.track(seq.images[1], seq.K, seq.stamps[1])
    K2 = seq.K.copy()
    K2[0, 0] *= 1.5
    r = est.track(seq.images[2], K2, seq.stamps[2])
    assert r.reset and 'intrinsics' in r.reason
    mono = est.track(seq.images[3][..., 0].copy(), K2, seq.stamps[3])   # mono input is accepted
    assert mono.depth.shape == (120, 160)
