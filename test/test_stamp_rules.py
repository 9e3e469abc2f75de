"""Integer-nanosecond stamps end to end and the one duplicate / stale / backwards rule (issue 13): a stamp is
published at most once per timeline; only ROS time itself jumping back (``new_timeline``) starts a new one."""
import numpy as np
import pytest
import torch

from dro_depth.data.synthetic import generate_sequence
from dro_depth.models.dro import build_dro
from dro_depth.sfm.estimator import (DuplicateStampError, EstimatorConfig, SfmEstimator, StampError,
                                     TrackingState)
from dro_depth.sfm.stamps import StampOrder, as_stamp_ns, seconds_to_ns

EPOCH_NS = 1_700_000_000_123_456_789     # a realistic wall-clock stamp: float seconds lose the last digits


@pytest.fixture(scope='module')
def seq():
    return generate_sequence('indoor', seed=3, n_frames=6, height=64, width=96)


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return build_dro()


def _make(model):
    return SfmEstimator(EstimatorConfig(width=64, height=48, iterations=1, device='cpu'), model=model)


def test_seconds_convert_once_to_the_nearest_ns():
    assert seconds_to_ns(1.5) == 1_500_000_000 and seconds_to_ns(3) == 3_000_000_000
    assert seconds_to_ns(0.000000001) == 1
    assert as_stamp_ns(stamp_ns=EPOCH_NS) == EPOCH_NS
    for bad in (float('nan'), float('inf'), -1.0, 'x', None, True):
        with pytest.raises(StampError):
            seconds_to_ns(bad)
    with pytest.raises(StampError, match='exactly one'):
        as_stamp_ns(1.0, 5)
    with pytest.raises(StampError, match='integer'):
        as_stamp_ns(stamp_ns=1.5)


def test_stamp_order_rule():
    order = StampOrder(max_gap_ns=2_000_000_000)
    for ns in (EPOCH_NS, EPOCH_NS + 1):              # 1 ns apart: distinct frames
        assert order.check(ns) == ''
        order.accept(ns)
    with pytest.raises(DuplicateStampError, match='duplicate'):
        order.check(EPOCH_NS + 1)
    with pytest.raises(DuplicateStampError, match='stale'):
        order.check(EPOCH_NS)                        # A, B, A: dropped, no reset
    assert 'backwards' in order.check(EPOCH_NS - 200)   # before everything published: time went backwards
    assert '0.000000200 s' in order.check(EPOCH_NS - 199)  # exact, not "0.000 s"
    assert 'gap' in order.check(EPOCH_NS + 3_000_000_000)


def test_a_stamp_is_never_accepted_twice_across_a_backwards_jump():
    second = 1_000_000_000
    X, Y = EPOCH_NS, EPOCH_NS + second // 30
    order = StampOrder(max_gap_ns=2 * second)
    for ns in (X, Y):
        order.accept(ns)
    assert 'backwards' in order.check(X - 5 * second)     # unseen and before X: a new run (tracking restarts)
    order.accept(X - 5 * second)
    with pytest.raises(DuplicateStampError, match='already published'):
        order.check(X)                                    # X, Y, X - 5 s, X: X is not published again
    with pytest.raises(DuplicateStampError, match='time already published before time went backwards'):
        order.check(X + 1)                                # nor anything inside the time X..Y already covered
    assert 'gap' in order.check(Y + 1)                    # past it: new time again (5 s after the newest)
    with pytest.raises(DuplicateStampError, match='duplicate'):
        order.check(X - 5 * second)
    order.accept(X - 4 * second)
    with pytest.raises(DuplicateStampError, match='out of order'):
        order.check(X - 4 * second - 1)                   # a late frame in the current run: refused, no reset
    order.new_timeline()                                  # ROS time jumped back (a looped bag with /clock)
    for ns in (X, Y):
        assert order.check(ns) == ''
        order.accept(ns)


def test_span_memory_is_bounded_and_only_ever_refuses_more():
    order = StampOrder(max_gap_ns=10 ** 18, max_spans=3)
    runs = [EPOCH_NS - k * 10 ** 10 for k in range(6)]   # six runs, each starting before the previous one
    for start in runs:
        order.accept(start)
        order.accept(start + 1000)
    assert len(order.spans) == 3
    for start in runs:                                    # every accepted stamp is still refused
        for ns in (start, start + 1000):
            with pytest.raises(DuplicateStampError):
                order.check(ns)


def test_estimator_keeps_tracking_through_a_stale_redelivery_and_1ns_stamps(seq, model):
    est = _make(model)
    stamps = [EPOCH_NS + i * 33_333_333 for i in range(4)]
    est.track(seq.images[0], seq.K, stamp_ns=stamps[0])
    second = est.track(seq.images[1], seq.K, stamp_ns=stamps[1])
    assert second.stamp_ns == stamps[1] and not second.reset
    with pytest.raises(DuplicateStampError):
        est.track(seq.images[0], seq.K, stamp_ns=stamps[0])          # stale A after B
    third = est.track(seq.images[2], seq.K, stamp_ns=stamps[2])
    assert not third.reset and third.state is not TrackingState.INITIALIZING, third.reason
    nearly = est.track(seq.images[3], seq.K, stamp_ns=stamps[2] + 1)  # 1 ns later: a valid frame
    assert nearly.stamp_ns == stamps[2] + 1 and not nearly.reset
    # Float seconds still work (the documented API) and are judged on the same integer rule.
    est2 = _make(model)
    est2.track(seq.images[0], seq.K, 10.0)
    with pytest.raises(DuplicateStampError):
        est2.track(seq.images[1], seq.K, 10.0)
    assert np.isfinite(est2.track(seq.images[1], seq.K, 10.1).depth).any()


def test_estimator_publishes_x_once_after_x_y_back_5s_x_until_time_itself_jumps_back(seq, model):
    est = _make(model)
    X, Y, back = EPOCH_NS, EPOCH_NS + 33_333_333, EPOCH_NS - 5_000_000_000
    est.track(seq.images[0], seq.K, stamp_ns=X)
    est.track(seq.images[1], seq.K, stamp_ns=Y)
    restarted = est.track(seq.images[2], seq.K, stamp_ns=back)       # a camera clock reset: tracked anew
    assert restarted.reset and 'backwards' in restarted.reason
    with pytest.raises(DuplicateStampError, match='already published'):
        est.track(seq.images[3], seq.K, stamp_ns=X)                  # X was published: never again
    assert est.track(seq.images[3], seq.K, stamp_ns=back + 33_333_333).stamp_ns == back + 33_333_333
    est.new_timeline('the bag loops: /clock went back')                # ROS time itself went back
    again = est.track(seq.images[0], seq.K, stamp_ns=X)
    assert again.stamp_ns == X and again.reset


def test_check_frame_is_the_pre_inference_check_without_pixels(seq, model):
    from dro_depth.geometry import IntrinsicsError
    from dro_depth.sfm.estimator import InputError
    est = SfmEstimator(EstimatorConfig(width=64, height=48, iterations=1, device='cpu',
                                       max_input_pixels=96 * 64), model=model)
    assert np.allclose(est.check_frame(96, 64, seq.K), seq.K)
    with pytest.raises(InputError, match='too small'):
        est.check_frame(15, 64, seq.K)
    with pytest.raises(InputError, match='max_input_pixels'):
        est.check_frame(97, 64, seq.K)
    bad = np.array(seq.K, dtype=np.float64)
    bad[0, 1] = 1e6
    with pytest.raises(IntrinsicsError, match='skew'):
        est.check_frame(96, 64, bad)


def test_max_input_pixels_refuses_before_any_copy(seq, model):
    from dro_depth.sfm.estimator import InputError
    est = SfmEstimator(EstimatorConfig(width=64, height=48, iterations=1, device='cpu',
                                       max_input_pixels=96 * 64 - 1), model=model)
    with pytest.raises(InputError, match='max_input_pixels'):
        est.track(seq.images[0], seq.K, 1.0)
    with pytest.raises(InputError, match='max_input_pixels'):
        est.track(seq.images[0][..., 0].copy(), seq.K, 1.0)       # mono: refused before it is expanded
    assert len(est.window) == 0
