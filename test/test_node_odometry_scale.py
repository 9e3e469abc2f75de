"""The INSTALLED sfm_node over real DDS: odometry never jumps when the metric scale changes, and every
output, /diagnostics and TF follow the stamping rules (issue 13, item 5).

The metric model runs on every frame, and half-way the metric head is switched (indoor -> outdoor), so the
filtered scale moves twice: from DRO units to the first metric estimate, then to the other head's. The
README promises that each new relative motion is scaled and appended to the last published pose; a scaler
that rescaled the trajectory instead would move the published position by |s_new / s_old - 1| x |p| in a
single step, far above the per-frame motion.
"""
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')

from dro_depth.ros.conversions import stamp_to_ns  # noqa: E402

FRAME_ID = 'scale_camera_optical_frame'
H, W = 96, 128
N_FRAMES = 20
PARAMS = {
    'device': 'cpu', 'cpu_threads': 1, 'width': 128, 'height': 96, 'iterations': 2, 'num_refs': 1,
    'diagnostics_period': 0.2, 'metric.rate': 1, 'metric.domain': 'indoor', 'publish_points': False,
    'backend': 'torch', 'metric.backend': 'torch',
}


def _installed():
    exe = Path(sys.prefix) / 'lib' / 'dro_depth' / 'sfm_node'
    if not exe.is_file():
        pytest.fail(f'{exe} is missing: run `make install` before the tests')
    return [sys.executable, str(exe)]


@pytest.fixture(scope='module')
def run(ros_env):
    from dro_depth.data.synthetic import generate_sequence
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.testing.process import NodeProcess

    seq = generate_sequence('indoor', seed=7, n_frames=N_FRAMES, height=H, width=W)
    proc = NodeProcess(PARAMS, command=_installed(), env=ros_env).start()
    client = SfmClient()
    diag_timeline = []          # (first odom stamp after it, scale, regime)
    sent = []
    try:
        if not client.wait_for_node(90):
            pytest.fail('sfm_node did not come up within 90 s:\n' + proc.log()[-3000:])
        assert client.camera.wait_for_subscribers(30)
        outs = client.outputs
        assert outs.wait(lambda o: o.publishers_ready(client.node, ['depth', 'pose', 'odom']), 30)
        base = time.time_ns()
        for i in range(N_FRAMES):
            if i == N_FRAMES // 2:
                assert all(r.successful for r in client.set_parameters(**{'metric.domain': 'outdoor'}))
            for attempt in range(3):                  # best-effort input: a lost frame is sent again
                stamp = base + i * 100_000_000 + attempt
                client.camera.publish(seq.images[i], seq.K, stamp, FRAME_ID)
                if outs.wait(lambda o: stamp in o.by_stamp('odom'), 15):
                    break
            else:
                pytest.fail(f'frame {i}: no odometry after 3 tries; {client.diagnostics()}')
            sent.append(stamp)
            d = client.diagnostics()
            diag_timeline.append((stamp, float(d.get('scale', 'nan')), d.get('scale_regime', '')))
        outs.wait(lambda o: False, 0.5)        # let the last diagnostics arrive
        yield client, sent, diag_timeline, proc
    finally:
        client.close()
        proc.stop()             # SIGINT: a clean exit removes the node's DDS shared-memory segment


def test_odometry_never_jumps_when_the_scale_changes(run):
    client, sent, timeline, _ = run
    odom = client.outputs.by_stamp('odom')
    p = np.array([[odom[s].msg.pose.pose.position.x, odom[s].msg.pose.pose.position.y,
                   odom[s].msg.pose.pose.position.z] for s in sent])
    scales = np.array([s for _, s, _ in timeline])
    known = np.isfinite(scales) & (scales > 0)
    assert known.sum() >= 5, f'the metric scale was never reported: {timeline[-3:]}'
    ratios = scales[known][1:] / scales[known][:-1]
    regimes = {r for _, _, r in timeline}
    assert regimes - {'dro_units', ''}, f'the node never left DRO units: {regimes}'
    steps = np.linalg.norm(np.diff(p, axis=0), axis=1)
    radius = np.linalg.norm(p, axis=1)[1:]
    # A rescaled trajectory would step by |ratio - 1| x |p|; an appended one by the frame's motion only.
    worst_change = float(np.max(np.abs(np.log(scales[known] / scales[known][0]))))
    median = float(np.median(steps[steps > 0])) if np.any(steps > 0) else 0.0
    print(f'scale from {scales[known][0]:.3g} to {scales[known][-1]:.3g} (largest change x'
          f'{np.exp(worst_change):.2f}); steps median {median:.3g}, max {np.max(steps):.3g}; |p| max '
          f'{np.max(radius):.3g}')
    assert np.all(steps <= 6 * median + 1e-9), (steps, scales, ratios)
    if worst_change > np.log(1.2):            # the scale moved by >20 %: a rescale would be visible
        assert np.max(steps) < 0.3 * abs(np.expm1(worst_change)) * np.max(radius), (steps, scales)


def test_outputs_are_stamped_with_their_input_once(run):
    client, sent, _, _ = run
    outs = client.outputs
    for topic in ('depth', 'depth/camera_info', 'confidence', 'pose', 'odom', 'metric_depth'):
        stamps = [stamp_to_ns(r.msg.header.stamp) for r in outs.get(topic)]
        assert len(stamps) == len(set(stamps)), f'{topic} published a stamp twice'
        assert set(stamps) <= set(sent), f'{topic} carries a stamp no input had'
    for topic in ('depth', 'pose', 'odom'):
        got = [stamp_to_ns(r.msg.header.stamp) for r in outs.get(topic)]
        assert got == sent, f'{topic}: not every answered frame, in order'
    path = outs.get('path')
    assert path and stamp_to_ns(path[-1].msg.header.stamp) == sent[-1]
    assert all(stamp_to_ns(p.header.stamp) in set(sent) for p in path[-1].msg.poses)


def test_diagnostics_and_tf_follow_the_stamping_rules(run):
    client, sent, _, _ = run
    diags = client.outputs.get('/diagnostics')
    stamps = [stamp_to_ns(r.msg.header.stamp) for r in diags]
    assert len(diags) >= 3
    assert all(b >= a for a, b in zip(stamps, stamps[1:])), 'diagnostics stamps went backwards'
    # /diagnostics carries the node clock's time of the report (not an input stamp), close to now
    assert abs(stamps[-1] - time.time_ns()) < 30e9 and stamps[-1] not in set(sent)
    d = client.diagnostics()
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        assert d['tf'] == 'tf2_ros missing'          # the node says why no TF is published
        return
    assert d['tf'] == 'publishing'
