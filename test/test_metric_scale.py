"""MetricScaler with known truth: synthetic depth and poses, DRO in other units, a noisy metric oracle."""
import numpy as np
import pytest

from dro_depth.data.synthetic import generate_sequence
from dro_depth.sfm.estimator import FrameResult, TrackingState
from dro_depth.metric.scaler import MetricScaler, ScaleRegime

S_TRUE = 2.5    # metres per DRO unit


@pytest.fixture(scope='module')
def seq():
    return generate_sequence('indoor', seed=21, n_frames=45, height=60, width=80)


def _dro_result(seq, i, rng):
    gt = seq.depths[i]
    depth = (gt / S_TRUE * (1 + 0.02 * rng.standard_normal(gt.shape))).astype(np.float32)
    T0_inv = np.linalg.inv(seq.poses[0])
    T = T0_inv @ seq.poses[i]
    T[:3, 3] /= S_TRUE
    return FrameResult(stamp=float(seq.stamps[i]), depth=depth, confidence=np.ones_like(depth),
                       T_world_cam=T, covariance=np.eye(6) * 1e-4, state=TrackingState.TRACKING)


def _oracle(gt, rng):
    m = gt * (1 + 0.05 * rng.standard_normal(gt.shape)) * 1.02
    out = rng.random(gt.shape) < 0.1
    m[out] = rng.uniform(0.3, 20.0, out.sum())
    return m.astype(np.float32)


def test_metric_output_converges_without_jumps(seq):
    rng = np.random.default_rng(0)
    scaler = MetricScaler(min_depth=0.1, max_depth=80.0)
    first = scaler.on_frame(_dro_result(seq, 0, rng))
    assert scaler.regime is ScaleRegime.DRO_UNITS and scaler.scale == 1.0
    np.testing.assert_allclose(first.depth, _dro_result(seq, 0, np.random.default_rng(0)).depth, rtol=1e-6)
    published, raw = [first.T_world_cam], [first.T_world_cam]
    pending = {}
    for i in range(1, len(seq)):
        res = _dro_result(seq, i, rng)
        out = scaler.on_frame(res)
        # Continuity: every published step is the raw step scaled by the scale in force for that frame.
        step_pub = np.linalg.norm(out.T_world_cam[:3, 3] - published[-1][:3, 3])
        step_raw = np.linalg.norm(res.T_world_cam[:3, 3] - raw[-1][:3, 3])
        assert step_pub == pytest.approx(scaler.scale * step_raw, rel=1e-9, abs=1e-12)
        published.append(out.T_world_cam)
        raw.append(res.T_world_cam)
        if i % 3 == 0:                      # the metric model runs on every third frame ...
            pending[i + 2] = i              # ... and answers two frames later
        if i in pending:
            j = pending.pop(i)
            obs = scaler.on_metric(float(seq.stamps[j]), _oracle(seq.depths[j], rng))
            assert obs is not None and obs.valid, getattr(obs, 'reason', None)
    assert scaler.regime is ScaleRegime.METRIC
    assert abs(scaler.scale / (S_TRUE * 1.02) - 1) < 0.03
    # The last published depth is metric: within a few percent of the truth.
    ratio = np.nanmedian(out.depth / seq.depths[-1])
    assert abs(ratio - 1.02) < 0.04
    d = scaler.diagnostics()
    assert d['scale_regime'] == 'metric' and d['scale'] == scaler.scale
    # Path length in metres: the frames before the first fix were published in DRO units, the rest scaled.
    true_len = sum(np.linalg.norm(seq.poses[i][:3, 3] - seq.poses[i - 1][:3, 3]) for i in range(1, len(seq)))
    pub_len = sum(np.linalg.norm(published[i][:3, 3] - published[i - 1][:3, 3]) for i in range(1, len(seq)))
    assert 0.85 < pub_len / true_len < 1.1


def test_metric_answer_before_the_frame_and_depth_limits(seq):
    rng = np.random.default_rng(1)
    scaler = MetricScaler(min_depth=0.5, max_depth=4.0)
    res = _dro_result(seq, 5, rng)
    assert scaler.on_metric(res.stamp, _oracle(seq.depths[5], rng)) is None     # DRO frame not there yet
    out = scaler.on_frame(res)                                                 # completes the pair
    assert scaler.last_observation is not None and scaler.regime is not ScaleRegime.DRO_UNITS
    finite = out.depth[np.isfinite(out.depth)]
    assert finite.size and finite.min() >= 0.5 and finite.max() <= 4.0
    with pytest.raises(ValueError):
        MetricScaler(min_depth=5.0, max_depth=1.0)


def test_frames_the_metric_model_skips_are_not_kept(seq):
    rng = np.random.default_rng(2)
    scaler = MetricScaler()
    a, b = _dro_result(seq, 3, rng), _dro_result(seq, 4, rng)
    scaler.on_frame(a, pair=False)             # the metric model will not see frame 3
    scaler.on_frame(b)
    assert len(scaler.pairing) == 1
    assert scaler.on_metric(b.stamp, _oracle(seq.depths[4], rng)).valid
    assert len(scaler.pairing) == 0 and scaler.regime is not ScaleRegime.DRO_UNITS
