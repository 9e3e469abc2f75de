"""Node statistics and their /diagnostics form."""
import numpy as np
import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from dro_depth.ros.diagnostics import DiagnosticsReporter, status_values  # noqa: E402
from dro_depth.ros.stats import DROP_REASONS, LatencyWindow, NodeStats, RateMeter  # noqa: E402


def test_rate_meter_measures_a_steady_rate():
    m = RateMeter(window=5.0)
    for i in range(21):
        m.tick(100.0 + i * 0.1)
    assert m.rate(102.0) == pytest.approx(10.0)
    assert m.rate(200.0) == 0.0        # everything outside the window is forgotten


def test_latency_window_is_bounded_and_gives_percentiles():
    w = LatencyWindow(size=100)
    for v in range(1000):
        w.add(v)
    assert len(w) == 100
    assert w.percentile(50) == pytest.approx(np.percentile(np.arange(900, 1000), 50))
    assert np.isnan(LatencyWindow().percentile(95))


def _info(**kw):
    info = dict(device='cpu', precision='fp32', iterations=4, num_refs=2, tracking_state='tracking',
                tracking_reason='', untrained=False, checkpoint='/x.safetensors', queue_depth=0,
                worker_alive=True)
    info.update(kw)
    return info


def test_ok_when_healthy_and_all_keys_present():
    stats = NodeStats()
    for _ in range(3):
        stats.image_received()
        stats.pair()
        stats.frame_processed(50.0)
        stats.frame_published(60.0, 70.0, 3.0)
    rep = DiagnosticsReporter('sfm_node: depth and odometry', 'cpu')
    status = rep.status(stats.snapshot(), _info())
    assert status.level == DiagnosticStatus.OK
    values = status_values(status)
    for key in ('input_rate_hz', 'processing_rate_hz', 'latency_p50_ms', 'latency_p95_ms', 'inference_p50_ms',
                'inference_p95_ms', 'received', 'processed', 'published', 'dropped_total', 'device',
                'precision', 'iterations', 'num_refs', 'tracking_state', 'untrained', 'checkpoint',
                'queue_depth'):
        assert key in values, key
    for reason in DROP_REASONS:
        assert values[f'dropped_{reason}'] == '0'
    assert float(values['latency_p50_ms']) == 70.0 and float(values['inference_p95_ms']) == 50.0
    assert values['untrained'] == 'false'


def test_frames_are_counted_by_tracking_state():
    stats = NodeStats()
    for state in ('initializing', 'tracking', 'tracking', 'lost', 'initializing', 'tracking', ''):
        stats.frame_processed(40.0, state)                 # '' (no state known) is processed, not counted
    values = status_values(DiagnosticsReporter('n', 'cpu').status(stats.snapshot(), _info()))
    assert (values['frames_tracking'], values['frames_initializing'], values['frames_lost']) == ('3', '2', '1')
    assert values['processed'] == '7'


@pytest.mark.parametrize('info,words', [
    (_info(untrained=True), 'UNTRAINED'),
    (_info(tracking_state='lost', tracking_reason='pose rejected'), 'pose rejected'),
])
def test_warn_when_untrained_or_lost(info, words):
    status = DiagnosticsReporter('n').status(NodeStats().snapshot(), info)
    assert status.level == DiagnosticStatus.WARN and words in status.message


def test_warn_only_while_dropping():
    stats = NodeStats()
    rep = DiagnosticsReporter('n')
    stats.drop('bad_encoding', "encoding '16UC1'")
    status = rep.status(stats.snapshot(), _info())
    values = status_values(status)
    assert status.level == DiagnosticStatus.WARN and 'bad_encoding 1' in status.message
    assert values['dropped_bad_encoding'] == '1' and '16UC1' in values['last_bad_encoding_reason']
    # nothing new dropped since the last report: back to OK, the total stays
    status = rep.status(stats.snapshot(), _info())
    assert status.level == DiagnosticStatus.OK and status_values(status)['dropped_total'] == '1'


def test_error_when_the_worker_died():
    status = DiagnosticsReporter('n').status(NodeStats().snapshot(), _info(worker_alive=False))
    assert status.level == DiagnosticStatus.ERROR
