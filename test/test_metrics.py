"""Depth and pose metrics against hand-computed values."""
import logging

import numpy as np
import pytest

from dro_depth.evaluation.scores import (DEPTH_KEYS, DepthMetricAccumulator, PoseMetricError, ate, depth_errors,
                                         evaluate_depth, length_error, rpe, trajectory_length)


def test_depth_errors_hand_computed():
    gt = np.array([[1.0, 2.0, 4.0]])
    pred = np.array([[1.0, 1.0, 2.0]])
    m = depth_errors(pred, gt)
    assert m['abs_rel'] == pytest.approx((0 + 0.5 + 0.5) / 3)
    assert m['sq_rel'] == pytest.approx((0 + 1 / 2 + 4 / 4) / 3)
    assert m['rmse'] == pytest.approx(np.sqrt(5 / 3))
    assert m['rmse_log'] == pytest.approx(np.log(2) * np.sqrt(2 / 3))
    assert [m['a1'], m['a2'], m['a3']] == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert m['n_valid'] == 3 and m['scale'] == 1.0 and m['coverage'] == 1.0
    s = depth_errors(pred, gt, median_scaling=True)  # scale = median(gt) / median(pred) = 2 -> pred [2, 2, 4]
    assert s['scale'] == pytest.approx(2.0)
    assert s['abs_rel'] == pytest.approx(1 / 3)
    assert s['rmse'] == pytest.approx(np.sqrt(1 / 3))
    assert s['a1'] == pytest.approx(2 / 3)
    # ratio 1.5: a1 fails, a2 (1.5625) passes
    m2 = depth_errors(np.array([1.5]), np.array([1.0]))
    assert (m2['a1'], m2['a2'], m2['a3']) == (0.0, 1.0, 1.0)


def test_perfect_prediction_and_scale_invariance():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 20, (12, 16))
    res = evaluate_depth(gt, gt)
    for kind in ('metric', 'median_scaled'):
        for k in ('abs_rel', 'sq_rel', 'rmse', 'rmse_log'):
            assert res[kind][k] == pytest.approx(0.0, abs=1e-12)
        assert res[kind]['a1'] == 1.0
    scaled = evaluate_depth(gt * 3.7, gt)
    assert scaled['median_scaled']['abs_rel'] == pytest.approx(0.0, abs=1e-12)
    assert scaled['median_scaled']['scale'] == pytest.approx(1 / 3.7)
    assert scaled['metric']['abs_rel'] == pytest.approx(2.7)


def test_invalid_pixels_are_excluded():
    gt = np.array([1.0, np.nan, 0.0, 100.0, np.inf, 2.0, 3.0])
    pred = np.array([1.0, 5.0, 5.0, 5.0, 5.0, np.nan, 6.0])
    m = depth_errors(pred, gt, max_depth=80)
    # valid gt: 1.0, 2.0, 3.0; pred NaN at 2.0 -> evaluated: (1, 1) and (3, 6)
    assert m['n_valid'] == 2 and m['coverage'] == pytest.approx(2 / 3)
    assert m['abs_rel'] == pytest.approx((0 + 1) / 2)
    mask = np.array([True, True, True, True, True, True, False])
    assert depth_errors(pred, gt, mask=mask)['abs_rel'] == pytest.approx(0.0)
    empty = depth_errors(pred, np.full_like(gt, np.nan))
    assert empty['n_valid'] == 0 and all(np.isnan(empty[k]) for k in DEPTH_KEYS)
    with pytest.raises(ValueError, match='shape'):
        depth_errors(pred[:3], gt)


def test_prediction_clamped_to_range():
    m = depth_errors(np.array([200.0]), np.array([40.0]), max_depth=80)
    assert m['abs_rel'] == pytest.approx(1.0)  # 200 clamped to 80


def test_accumulator_averages_frames():
    acc = DepthMetricAccumulator(max_depth=10)
    gt = np.full((4, 4), 2.0)
    acc.add(gt, gt)
    acc.add(gt * 2, gt)
    acc.add(gt, np.full((4, 4), np.nan))  # no valid pixels: skipped
    s = acc.summary()
    assert s['n_frames'] == 2
    assert s['metric']['abs_rel'] == pytest.approx(0.5)
    assert s['median_scaled']['abs_rel'] == pytest.approx(0.0)
    assert s['scale_mean'] == pytest.approx(0.75)


def _trajectory(n=30, seed=0):
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (n, 1, 1))
    yaw = np.cumsum(rng.normal(0, 0.05, n))
    poses[:, 0, 0] = poses[:, 1, 1] = np.cos(yaw)
    poses[:, 0, 1] = -np.sin(yaw)
    poses[:, 1, 0] = np.sin(yaw)
    poses[:, :3, 3] = np.cumsum(rng.normal(0, 0.3, (n, 3)), axis=0)
    return poses


def _rigid(yaw, t):
    T = np.eye(4)
    T[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
    T[:3, 3] = t
    return T


def test_ate_identical_offset_and_alignment():
    ref = _trajectory()
    assert ate(ref, ref)['rmse'] == pytest.approx(0.0, abs=1e-9)
    shifted = ref.copy()
    shifted[:, :3, 3] += [0.3, -0.4, 0.0]  # known offset of 0.5 m
    res = ate(shifted, ref, align='none')
    assert res['rmse'] == pytest.approx(0.5) and res['max'] == pytest.approx(0.5) and res['n'] == len(ref)
    assert ate(shifted, ref, align='se3')['rmse'] == pytest.approx(0.0, abs=1e-9)
    moved = _rigid(0.7, [5, -2, 1]) @ ref  # the same trajectory in another world frame
    assert ate(moved, ref, align='se3')['rmse'] == pytest.approx(0.0, abs=1e-9)
    assert ate(moved, ref, align='none')['rmse'] > 1.0
    scaled = ref.copy()
    scaled[:, :3, 3] *= 0.25
    res = ate(scaled, ref, align='sim3')
    assert res['rmse'] == pytest.approx(0.0, abs=1e-9) and res['scale'] == pytest.approx(4.0)
    assert ate(scaled, ref, align='se3')['rmse'] > 0.1


def test_ate_straight_line_and_stamp_association():
    ref = np.tile(np.eye(4), (10, 1, 1))
    ref[:, 0, 3] = np.arange(10) * 0.5  # collinear: evo's own Umeyama refuses this
    est = ref.copy()
    est[:, :3, 3] = est[:, :3, 3] * 2 + [1, 2, 3]
    assert ate(est, ref, align='sim3')['rmse'] == pytest.approx(0.0, abs=1e-9)
    stamps = np.arange(10) * 0.1
    sub = ate(est[::2], ref, est_stamps=stamps[::2], ref_stamps=stamps, align='sim3')
    assert sub['n'] == 5 and sub['rmse'] == pytest.approx(0.0, abs=1e-9)


def test_pose_metric_errors():
    ref = _trajectory(5)
    with pytest.raises(PoseMetricError, match='at least 3'):
        ate(ref[:2], ref[:2], align='se3')
    with pytest.raises(PoseMetricError, match='at least 2'):
        ate(ref[:1], ref[:1], align='none')
    with pytest.raises(PoseMetricError, match='stamps'):
        ate(ref[:4], ref)
    with pytest.raises(PoseMetricError, match='does not move'):
        ate(np.tile(np.eye(4), (5, 1, 1)), ref, align='sim3')
    with pytest.raises(ValueError, match='alignment'):
        ate(ref, ref, align='affine')
    with pytest.raises(PoseMetricError, match='associate'):
        ate(ref, ref, est_stamps=np.arange(5.0), ref_stamps=np.arange(5.0) + 100)


def test_rpe_known_values():
    ref = _trajectory(20)
    res = rpe(ref, ref)
    assert res['trans']['rmse'] == pytest.approx(0.0, abs=1e-9) and res['n'] == 19
    moved = _rigid(-1.2, [3, 3, 3]) @ ref
    assert rpe(moved, ref)['trans']['rmse'] == pytest.approx(0.0, abs=1e-9)  # invariant to a global transform
    # constant drift: est moves 10 cm more along world x per frame -> every relative error has norm 0.1
    drift = ref.copy()
    drift[:, 0, 3] += 0.1 * np.arange(20)
    res = rpe(drift, ref)
    assert res['trans']['mean'] == pytest.approx(0.1)
    assert res['rot_deg']['max'] == pytest.approx(0.0, abs=1e-9)
    scaled = ref.copy()
    scaled[:, :3, 3] *= 3
    assert rpe(scaled, ref, align='sim3')['trans']['rmse'] == pytest.approx(0.0, abs=1e-9)
    assert rpe(ref, ref, delta=3)['n'] == len(range(0, 17, 3))


def test_length_error():
    ref = np.tile(np.eye(4), (4, 1, 1))
    ref[:, 0, 3] = [0, 1, 2, 4]
    assert trajectory_length(ref) == pytest.approx(4.0)
    est = ref.copy()
    est[:, :3, 3] *= 0.5
    e = length_error(est, ref)
    assert e['length_est'] == pytest.approx(2.0) and e['rel_error'] == pytest.approx(0.5)
    assert length_error(est, ref, scale=2.0)['abs_error'] == pytest.approx(0.0)


def test_evo_is_silent(caplog):
    caplog.set_level(logging.DEBUG)
    ref = _trajectory(10)
    ate(ref, ref, align='sim3')
    rpe(ref, ref)
    assert not [r for r in caplog.records if r.name.startswith('evo')]
