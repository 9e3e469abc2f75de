"""Metric scale: per-frame estimate, Kalman filter over time, continuous metric odometry.

Truth is synthetic (dro_depth.evaluation.scale_eval): rooms of planes and boxes in metres, a DRO off by a known
scale, and a metric-depth oracle with multiplicative noise, per-frame bias, gross outliers and invalid
pixels at another resolution.
"""
import math

import cv2
import numpy as np
import pytest

from dro_depth.metric.scale import (MetricTrajectory, ScaleError, ScaleFilter, ScaleFilterConfig, ScaleObservation,
                                    ScalePairing, ScaleState, estimate_scale, scale_covariance, scale_depth)
from dro_depth.evaluation.scale_eval import dro_view, metric_oracle, room_depth, simulate

S_TRUE = 3.0


def _frame(rng, noise=0.07, bias=0.03, outliers=0.1, invalid=0.05, s=S_TRUE):
    depth = room_depth(96, 128, rng)
    metric = metric_oracle(depth, rng, noise, bias, outliers, invalid, out_shape=(144, 192))
    return dro_view(depth, s, rng), metric


def _obs(scale, log_sigma=0.03):
    return ScaleObservation(float(scale), log_sigma, 1.0, 1000)


# ------------------------------------------------------------------------------------ per frame
def test_exact_maps_give_exact_scale_across_resolutions():
    rng = np.random.default_rng(0)
    depth = room_depth(96, 128, rng)
    metric = np.kron(depth, np.ones((2, 2), np.float32))          # metric at twice the resolution
    obs = estimate_scale(depth / np.float32(2.5), metric)
    assert obs.valid and obs.reason == ''
    assert obs.scale == pytest.approx(2.5, rel=1e-5)
    assert obs.inlier_ratio == 1.0
    assert obs.log_sigma == pytest.approx(0.03, rel=1e-3)          # only the systematic floor is left


def test_invalid_pixels_confidence_and_range_are_ignored():
    rng = np.random.default_rng(1)
    depth = room_depth(96, 128, rng)
    dro = depth / np.float32(2.0)
    metric = depth.copy()
    metric[:10] = np.nan
    metric[10:20] = 0.0
    metric[20:25] = np.inf
    metric[25:30] = 500.0                                          # beyond max_depth
    dro[30:35] = -1.0
    conf = np.ones_like(depth)
    metric[40:70] *= 5.0                                           # 30 % wrong, but with low confidence
    conf[40:70] = 0.1
    obs = estimate_scale(dro, metric, confidence=conf)
    assert obs.scale == pytest.approx(2.0, rel=1e-5)
    assert obs.n_pixels == (96 - 35 - 30) * 128
    # Without the confidence mask the wrong rows (about half the valid pixels) show up as outliers.
    assert estimate_scale(dro, metric).inlier_ratio < 0.6
    valid = np.ones(depth.shape, bool)
    valid[40:70] = False
    assert estimate_scale(dro, metric, valid=valid).scale == pytest.approx(2.0, rel=1e-5)


def test_too_few_pixels_or_disagreeing_maps_give_invalid_observation():
    rng = np.random.default_rng(2)
    depth = room_depth(64, 80, rng)
    metric = np.full_like(depth, np.nan)
    metric[:3, :3] = depth[:3, :3]
    obs = estimate_scale(depth, metric)
    assert not obs.valid and 'too few valid pixels' in obs.reason and math.isnan(obs.scale)
    noise = np.exp(rng.normal(0, 1.5, depth.shape)).astype(np.float32)  # no common scale at all
    scrambled = estimate_scale(depth, depth * noise)
    assert not scrambled.valid and 'spread' in scrambled.reason
    wild = depth * 2.0
    mask = rng.random(depth.shape) < 0.3                           # 30 % scattered over 0.1-80 m
    wild[mask] = rng.uniform(0.1, 80.0, int(mask.sum()))
    assert estimate_scale(depth, wild).scale == pytest.approx(2.0, rel=1e-4)
    strict = estimate_scale(depth, wild, min_inlier_ratio=0.9)
    assert not strict.valid and 'inlier ratio' in strict.reason and 0.6 < strict.inlier_ratio < 0.9
    f = ScaleFilter()
    assert f.update(obs, stamp=0.0) == 'invalid'
    assert f.state is ScaleState.UNKNOWN and f.scale == 1.0 and f.n_invalid == 1


def test_robust_to_gross_outliers():
    rng = np.random.default_rng(3)
    errs, naive = [], []
    for _ in range(15):
        dro, metric = _frame(rng, noise=0.07, bias=0.0, outliers=0.2)
        errs.append(abs(estimate_scale(dro, metric).scale / S_TRUE - 1))
        small = cv2.resize(metric, (dro.shape[1], dro.shape[0]), interpolation=cv2.INTER_NEAREST)
        ok = np.isfinite(small) & (small > 0)
        naive.append(abs(np.mean(small[ok] / dro[ok]) / S_TRUE - 1))
    assert np.median(errs) < 0.02 and max(errs) < 0.05
    assert np.median(naive) > 0.1                                       # a plain mean ratio is ruined


def test_log_sigma_matches_monte_carlo_spread():
    # i.i.d. pixel noise, no floor and no cap: the analytic sigma of a median must match the empirical one.
    rng = np.random.default_rng(4)
    depth = room_depth(40, 50, rng)
    ests, sigmas = [], []
    for _ in range(300):
        metric = depth * np.exp(rng.normal(0, 0.1, depth.shape)).astype(np.float32)
        obs = estimate_scale(depth, metric, sigma_floor=0.0, max_effective_samples=1e9)
        ests.append(math.log(obs.scale))
        sigmas.append(obs.log_sigma)
    ratio = np.std(ests) / np.mean(sigmas)
    assert 0.8 < ratio < 1.25, ratio


def test_default_sigma_is_calibrated_on_realistic_frames():
    rng = np.random.default_rng(5)
    z = []
    for _ in range(60):
        dro, metric = _frame(rng, noise=0.1, bias=0.03, outliers=0.1)
        obs = estimate_scale(dro, metric)
        z.append(abs(math.log(obs.scale / S_TRUE)) / obs.log_sigma)
    assert np.mean(np.array(z) <= 2.0) > 0.85


def test_bad_inputs_raise_specific_errors():
    d = np.ones((8, 8), np.float32)
    with pytest.raises(ScaleError, match='2-D'):
        estimate_scale(d[None], d)
    with pytest.raises(ScaleError, match='numpy array'):
        estimate_scale(d.tolist(), d)
    with pytest.raises(ScaleError, match='confidence has shape'):
        estimate_scale(d, np.ones((16, 16), np.float32), confidence=np.ones((5, 5)))
    with pytest.raises(ScaleError, match='min_depth'):
        estimate_scale(d, d, min_depth=5.0, max_depth=1.0)
    with pytest.raises(ScaleError, match='stamp'):
        ScaleFilter().update(_obs(2.0))
    with pytest.raises(ScaleError, match='process_noise'):
        ScaleFilter(ScaleFilterConfig(process_noise=-1.0))
    with pytest.raises(ScaleError, match='scale must be finite'):
        MetricTrajectory().update(np.eye(4), 0.0)
    with pytest.raises(ScaleError, match='4x4'):
        MetricTrajectory().update(np.eye(3), 1.0)


# ------------------------------------------------------------------------------------ filter
def test_filtered_scale_beats_per_frame_noise():
    # 10 % metric noise, 3 % per-frame bias, 20 % gross outliers: per-frame errors of ~2.5 % (median).
    frame_med, filt30 = [], []
    for seed in range(6):
        r = simulate(90, np.random.default_rng(seed), noise=0.1, bias=0.03, outliers=0.2, latency=0)
        assert len(r.filt_err) == 30
        frame_med.append(np.median(r.frame_err))
        filt30.append(r.filt_err[-1])                       # after 30 observations
    assert np.median(filt30) < 0.01 and max(filt30) < 0.025, filt30
    assert np.mean(filt30) < 0.5 * np.mean(frame_med)


def test_states_unknown_converging_metric_and_aging():
    f = ScaleFilter(ScaleFilterConfig(metric_min_updates=3, process_noise=0.01))
    assert f.state is ScaleState.UNKNOWN and f.scale == 1.0 and math.isinf(f.log_sigma)
    f.update(_obs(2.0, 0.2), stamp=0.0)
    assert f.state is ScaleState.CONVERGING and f.scale == pytest.approx(2.0)
    f.update(_obs(2.0, 0.03), stamp=0.1)
    assert f.state is ScaleState.CONVERGING                       # sigma small but only 2 observations
    f.update(_obs(2.0, 0.03), stamp=0.2)
    assert f.state is ScaleState.METRIC and f.is_metric and f.log_sigma < 0.05
    # Without observations the scale's uncertainty grows: after a long outage it is no longer metric.
    assert f.state_at(0.3) is ScaleState.METRIC
    assert f.state_at(100.0) is ScaleState.CONVERGING
    assert f.log_sigma_at(100.0) > f.log_sigma
    f.reset()
    assert f.state is ScaleState.UNKNOWN


def test_isolated_outlier_frames_are_rejected_without_reinit():
    rng = np.random.default_rng(6)
    f = ScaleFilter()
    for k in range(40):
        bad = k % 4 == 3                                      # every 4th frame is a 1.6x outlier
        s = 2.0 * (1.6 if bad else math.exp(rng.normal(0, 0.03)))
        outcome = f.update(_obs(s), stamp=0.3 * k)
        if bad and k > 3:
            assert outcome == 'rejected'
    assert f.n_reinit == 0 and f.scale == pytest.approx(2.0, rel=0.02)
    # Rejections on both sides are not a persistent change either.
    g = ScaleFilter(ScaleFilterConfig(reinit_after=3))
    for k in range(5):
        g.update(_obs(2.0), stamp=k)
    for k, s in enumerate([3.0, 1.3, 3.0, 1.3, 3.0, 1.3]):
        assert g.update(_obs(s), stamp=5 + k) == 'rejected'
    assert g.n_reinit == 0 and g.scale == pytest.approx(2.0, rel=1e-6)


@pytest.mark.parametrize('step', [0.3, -0.25])
def test_step_change_is_accepted_within_k_without_oscillation(step):
    rng = np.random.default_rng(7)
    K = 5
    f = ScaleFilter(ScaleFilterConfig(reinit_after=K))
    for k in range(30):
        f.update(_obs(2.0 * math.exp(rng.normal(0, 0.03))), stamp=0.3 * k)
    new = 2.0 * (1 + step)
    rel = []
    for k in range(30, 70):
        outcome = f.update(_obs(new * math.exp(rng.normal(0, 0.03))), stamp=0.3 * k)
        if k < 30 + K - 1:
            assert outcome == 'rejected'
        rel.append(f.scale / new - 1)
    assert f.n_reinit == 1
    assert abs(rel[K - 1]) < 0.04                             # accepted on the K-th observation
    after = np.array(rel[K - 1:])
    assert np.all(np.abs(after) < 0.04)                       # stays there: no overshoot or ringing
    assert f.n_rejected == K                                  # nothing rejected after the switch


def test_small_step_is_tracked_by_drift_detection():
    rng = np.random.default_rng(8)
    results = {}
    for h in (0.0, 5.0):                                      # CUSUM off / on
        f = ScaleFilter(ScaleFilterConfig(drift_h=h))
        for k in range(40):
            f.update(_obs(2.0 * math.exp(rng.normal(0, 0.03))), stamp=0.3 * k)
        errs = []
        for k in range(40, 60):
            f.update(_obs(2.16 * math.exp(rng.normal(0, 0.03))), stamp=0.3 * k)
            errs.append(abs(f.scale / 2.16 - 1))
        settle = next(i for i, e in enumerate(errs + [0]) if e < 0.025)
        results[h] = (settle, f.n_drift_alarms, max(errs[10:]))
    assert results[0.0][1] == 0 and results[5.0][1] >= 1
    assert results[5.0][0] <= 8 and results[5.0][0] < results[0.0][0]
    assert results[5.0][2] < 0.04


def test_late_observations_do_not_break_the_filter():
    f = ScaleFilter()
    f.update(_obs(2.0), stamp=10.0)
    f.update(_obs(2.02), stamp=9.5)                            # older stamp: applied without prediction
    assert f.stamp == 10.0 and f.scale == pytest.approx(2.01, rel=0.01)


# ------------------------------------------------------------------------------------ trajectory
def test_scaled_trajectory_length_and_continuity():
    for seed in range(2):
        r = simulate(150, np.random.default_rng(10 + seed), noise=0.1, bias=0.03, outliers=0.2, latency=0)
        assert r.path_err < 0.02, r.path_err
        assert r.max_step_jump < 1e-9
        # The metric model answering 2 frames late: odometry held until the first fix, then anchored.
        late = simulate(150, np.random.default_rng(10 + seed), noise=0.1, bias=0.03, outliers=0.2, latency=2)
        assert late.path_err_after_fix < 0.02, late.path_err_after_fix
        # Unscaled DRO odometry would be off by the factor 3.
        raw_len = np.sum(np.linalg.norm(np.diff(r.truth[:, :3, 3], axis=0), axis=1)) / S_TRUE
        assert raw_len < 0.5 * np.sum(np.linalg.norm(np.diff(r.published[:, :3, 3], axis=0), axis=1))


def test_scale_change_never_moves_published_history():
    rng = np.random.default_rng(11)
    traj = MetricTrajectory()
    T_raw = np.eye(4)
    published = []
    for i in range(40):
        if i:
            c, s = math.cos(0.05), math.sin(0.05)
            step = np.eye(4)
            step[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
            step[:3, 3] = [rng.normal(0, 0.01), 0.0, 0.1]
            T_raw = T_raw @ step
        scale = 1.0 if i < 20 else 2.0                          # the estimate jumps at frame 20
        published.append(traj.update(T_raw, scale))
    P = np.array(published)
    steps = np.linalg.norm(np.diff(P[:, :3, 3], axis=0), axis=1)
    # Every published step is exactly scale x the raw step (about 0.1 in DRO units).
    np.testing.assert_allclose(steps[:19], 0.1, rtol=0.02)
    np.testing.assert_allclose(steps[19:], 2 * steps[:19].mean() * np.ones(20), rtol=0.02)
    assert np.max(steps) < 0.25                                   # no jump at the switch
    # Re-scaling the whole raw trajectory (the rejected policy) would have jumped by ~ the path so far.
    rewritten = T_raw[:3, 3] * 2.0 - P[-1, :3, 3]
    assert np.linalg.norm(rewritten) > 1.0
    # Rotations are the raw ones.
    np.testing.assert_allclose(P[-1, :3, :3], T_raw[:3, :3], atol=1e-12)
    assert traj.path_length == pytest.approx(steps.sum())


def test_anchor_depth_and_covariance_helpers():
    traj = MetricTrajectory()
    T = np.eye(4)
    T[:3, 3] = [1.0, 2.0, 3.0]
    np.testing.assert_allclose(traj.anchor(T, 2.0)[:3, 3], [2.0, 4.0, 6.0])
    depth = np.array([[1.0, np.nan], [0.01, 50.0]], np.float32)
    out = scale_depth(depth, 2.0, min_depth=0.1, max_depth=80.0)
    assert out.dtype == np.float32 and out[0, 0] == 2.0
    assert np.isnan(out[0, 1]) and np.isnan(out[1, 0]) and np.isnan(out[1, 1])
    C = np.diag([1.0, 1.0, 1.0, 0.5, 0.5, 0.5])
    C[0, 3] = C[3, 0] = 0.1
    Cs = scale_covariance(C, 3.0)
    assert Cs[0, 0] == 9.0 and Cs[3, 3] == 0.5 and Cs[0, 3] == pytest.approx(0.3)
    # The scale's uncertainty adds position covariance along the travelled path, PSD, growing.
    traj2 = MetricTrajectory()
    traj2.update(np.eye(4), 2.0, 0.05)
    sizes = []
    for k in range(1, 6):
        T = np.eye(4)
        T[2, 3] = 0.5 * k
        traj2.update(T, 2.0, 0.05)
        cov = traj2.covariance(np.eye(6) * 1e-6, 2.0)
        assert np.all(np.linalg.eigvalsh(cov) > -1e-12)
        sizes.append(cov[2, 2])
    assert np.all(np.diff(sizes) > 0)
    assert math.sqrt(sizes[-1]) == pytest.approx(0.05 * 5.0, rel=0.01)   # 5 m travelled, 5 % scale sigma


def test_pairing_matches_late_metric_frames():
    pairs = ScalePairing(max_frames=3)
    d = np.ones((4, 4), np.float32)
    for k in range(5):
        assert pairs.add_dro(0.1 * k, d * k) is None
    assert pairs.add_metric(0.0, d) is None                    # frame 0 was evicted (max_frames)
    hit = pairs.add_metric(0.3, d * 7)
    assert hit is not None and hit[0] == pytest.approx(0.3) and hit[1][0, 0] == 3 and hit[3][0, 0] == 7
    assert pairs.add_metric(0.9, d) is None
    hit = pairs.add_dro(0.9, d * 9)
    assert hit is not None and hit[1][0, 0] == 9


@pytest.mark.parametrize('kind', ['indoor', 'outdoor'])
def test_end_to_end_on_rendered_sequences(kind):
    synthetic = pytest.importorskip('dro_depth.data.synthetic', reason='dro_depth.data.synthetic not available')
    seq = synthetic.generate_sequence(kind, seed=3, n_frames=40, height=96, width=128)
    rng = np.random.default_rng(12)
    s_true = 0.4 if kind == 'indoor' else 7.0
    filt, traj = ScaleFilter(), MetricTrajectory()
    T_raw = seq.poses[0].copy()
    T_raw[:3, 3] /= s_true
    published = []
    for i, (depth, stamp) in enumerate(zip(seq.depths, seq.stamps)):
        if i:
            T_rel = np.linalg.inv(seq.poses[i - 1]) @ seq.poses[i]
            T_rel[:3, 3] /= s_true
            T_raw = T_raw @ T_rel
        if i % 2 == 0:                                 # sky is NaN (outdoor), far depth beyond max_depth
            metric = metric_oracle(depth, rng, noise=0.08, bias=0.03, outliers=0.15, out_shape=(120, 160))
            filt.update(estimate_scale(dro_view(depth, s_true, rng), metric, stamp=stamp))
        if filt.state is not ScaleState.UNKNOWN:
            published.append(traj.update(T_raw, filt.scale, min(filt.log_sigma, 1.0)))
    assert filt.is_metric and filt.n_invalid == 0
    assert abs(filt.scale / s_true - 1) < 0.015
    true_len = np.sum(np.linalg.norm(np.diff(seq.poses[:, :3, 3], axis=0), axis=1))
    assert traj.path_length == pytest.approx(true_len, rel=0.03)
