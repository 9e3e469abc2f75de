"""sfm_node over real DDS (in this process, its own rclpy context): bad input versus bugs (issue 13).

A real :class:`SfmEstimator` (random weights, tiny network) with one failure injected per marked stamp:
a bug inside ``track()`` and a result whose conversion fails half-way through publishing. The node must
count both as ``internal_error`` in /diagnostics, log them with their traceback through its logger, keep
running, and publish nothing at all of those frames.
"""
import time

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')

import torch  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from dro_depth.data.synthetic import generate_sequence  # noqa: E402
from dro_depth.models.dro import build_dro  # noqa: E402
from dro_depth.sfm.estimator import EstimatorConfig, SfmEstimator  # noqa: E402

FRAME_ID = 'rel_camera_optical_frame'


class InjectedFailures(SfmEstimator):
    """The real estimator; stamps in ``bug_at`` raise a non-input error inside track(), stamps in
    ``bad_output_at`` return a confidence map the conversion cannot encode (3-D)."""

    bug_at: set = set()
    bad_output_at: set = set()

    def _infer(self, frame):
        if frame.stamp_ns in self.bug_at:
            raise RuntimeError('simulated bug inside track()')
        return super()._infer(frame)

    def _finish(self, frame, net, motion):
        result = super()._finish(frame, net, motion)
        if frame.stamp_ns in self.bad_output_at:
            result.confidence = result.confidence[..., None]
        return result


@pytest.fixture
def node_and_client(ros_env):
    from dro_depth.ros.sfm_node import SfmNode
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.testing.spin import spinning

    torch.manual_seed(0)
    cfg = EstimatorConfig(width=64, height=48, iterations=1, device='cpu')
    est = InjectedFailures(cfg, model=build_dro())
    est.bug_at, est.bad_output_at = set(), set()
    overrides = [Parameter('metric.enabled', value=False), Parameter('diagnostics_period', value=0.2),
                 Parameter('publish_tf', value=False), Parameter('cpu_threads', value=1),
                 Parameter('max_input_pixels', value=64 * 48)]
    with spinning(lambda ctx: SfmNode(estimator=est, context=ctx, parameter_overrides=overrides)) as node:
        client = SfmClient()
        try:
            assert client.camera.wait_for_subscribers(30), 'sfm_node did not subscribe within 30 s'
            yield est, node, client
        finally:
            client.close()


def test_bugs_are_counted_logged_with_traceback_and_publish_nothing(node_and_client, capfd):
    est, node, client = node_and_client
    seq = generate_sequence('indoor', seed=5, n_frames=5, height=48, width=64)
    base = time.time_ns()
    stamps = [base + i * 50_000_000 for i in range(5)]
    est.bug_at, est.bad_output_at = {stamps[1]}, {stamps[3]}
    outs = client.outputs
    for i, stamp in enumerate(stamps):
        before = node.stats.snapshot()
        client.camera.publish(seq.images[i], seq.K, stamp, FRAME_ID)
        done = outs.wait(lambda o: stamp in o.by_stamp('odom'), 20) if i % 2 == 0 else \
            outs.wait(lambda o: node.stats.snapshot()['drops']['internal_error'] >
                      before['drops']['internal_error'], 20)
        assert done, f'frame {i} was neither published nor counted'
    big = np.zeros((49, 64, 3), np.uint8)                # one row above max_input_pixels
    client.camera.publish(big, seq.K, base + 10 ** 9, FRAME_ID)
    diag = client.wait_diagnostics(lambda d: d.get('dropped_internal_error') == '2'
                                   and d.get('dropped_too_large') == '1', 10)
    assert diag.get('dropped_internal_error') == '2', diag
    assert diag.get('dropped_too_large') == '1' and 'max_input_pixels' in diag['last_too_large_reason']
    assert diag['dropped_bad_input'] == '0'              # a bug is not bad input
    good = {stamps[0], stamps[2], stamps[4]}
    for topic in ('depth', 'depth/camera_info', 'confidence', 'pose', 'odom'):
        assert set(outs.by_stamp(topic)) == good, f'{topic} published a failed frame (half-published)'
    snap = node.stats.snapshot()
    assert snap['processed'] == 3 and snap['published'] == 3
    assert snap['received'] == snap['processed'] + sum(snap['drops'].values())   # nothing pending now
    assert node.worker.alive
    err = capfd.readouterr().err
    assert 'Traceback' in err and 'simulated bug inside track()' in err and 'internal_error' in err
