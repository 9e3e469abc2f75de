"""End to end: the INSTALLED sfm_node executable in its own process, fed a camera stream over real DDS.

The node runs a small network (128x96, 2 iterations) so the test stays fast on 2 CPU cores. Every wait
is bounded; discovery is awaited through publisher / subscription counts, never fixed sleeps.
"""
import math
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')

from dro_depth.ros.conversions import image_to_float, pointcloud2_to_array, stamp_to_ns  # noqa: E402

FRAME_ID = 'e2e_camera_optical_frame'
H, W = 120, 160
PATH_MAX = 5
PARAMS = {
    'device': 'cpu', 'cpu_threads': 1, 'width': 128, 'height': 96, 'iterations': 2, 'num_refs': 1,
    'path_max_length': PATH_MAX, 'publish_points': True, 'points_decimation': 4,
    'points_allow_unscaled': True,     # the format is checked here; the metric gate in test_points_node.py
    'diagnostics_period': 0.25, 'pairing_queue_size': 3, 'odom_frame': 'odom', 'base_frame': 'base_link',
    'metric.rate': 2,          # the bundled light metric model on every 2nd frame
}


def _installed_executable():
    exe = Path(sys.prefix) / 'lib' / 'dro_depth' / 'sfm_node'
    if not exe.is_file():
        pytest.fail(f'{exe} is missing: run `make install` (pip install .) before the tests')
    return [sys.executable, str(exe)]


def _sequence(n):
    try:
        from dro_depth.data.synthetic import generate_sequence
        seq = generate_sequence('indoor', seed=3, n_frames=n, height=H, width=W)
        return seq.images, seq.K
    except ImportError:      # generator not available: textured frames sliding right
        rng = np.random.default_rng(0)
        tex = rng.integers(0, 256, (H, W + 4 * n, 3), dtype=np.uint8)
        K = np.array([[100.0, 0, W / 2 - 0.5], [0, 100.0, H / 2 - 0.5], [0, 0, 1]])
        return np.stack([tex[:, 4 * i:4 * i + W] for i in range(n)]), K


class Session:
    """The node process + a client publishing the camera and collecting outputs."""

    def __init__(self, env):
        from dro_depth.ros.testing.client import SfmClient
        from dro_depth.ros.testing.process import NodeProcess

        self.images, self.K = _sequence(40)
        self.index = 0
        self.sent = {}                         # stamp ns -> frame index
        self.proc = NodeProcess(PARAMS, command=_installed_executable(), env=env).start()
        self.client = SfmClient()

    def stream(self, n, rate=20.0, **kwargs):
        """Publish the next ``n`` frames at ``rate`` Hz, stamped with the current time."""
        period = 1.0 / rate
        t_next = time.monotonic()
        for _ in range(n):
            i = self.index % len(self.images)
            stamp = time.time_ns()
            self.client.camera.publish(self.images[i], self.K, stamp, FRAME_ID, **kwargs)
            self.sent[stamp] = i
            self.index += 1
            t_next += period
            time.sleep(max(0.0, t_next - time.monotonic()))

    def stream_until(self, predicate, timeout, rate=20.0):
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            self.stream(4, rate)
        return predicate()

    def close(self):
        self.client.close()
        self.proc.stop()        # SIGINT: a clean exit removes the node's DDS shared-memory segment


@pytest.fixture(scope='module')
def session(ros_env):
    s = Session(ros_env)
    try:
        if not s.client.wait_for_node(90):
            pytest.fail('sfm_node did not come up within 90 s:\n' + s.proc.log()[-3000:])
        outs = s.client.outputs
        ok = s.stream_until(lambda: outs.count('depth') >= 6 and outs.count('points') >= 2
                            and outs.count('metric_depth') >= 2, 90)
        assert ok, 'fewer than 6 depth outputs within 90 s:\n' + s.proc.log()[-3000:]
        s.client.outputs.wait(lambda o: o.count('path') >= 6 and o.count('odom') >= 6, 10)
        yield s
    finally:
        s.close()


def test_depth_images(session):
    received = session.client.outputs.get('depth')
    assert len(received) >= 6
    for r in received:
        msg = r.msg
        assert msg.encoding == '32FC1' and (msg.height, msg.width) == (H, W) and msg.step == 4 * W
        assert stamp_to_ns(msg.header.stamp) in session.sent, 'depth stamp is not an input stamp'
        assert msg.header.frame_id == FRAME_ID
        depth = image_to_float(msg)
        valid = np.isfinite(depth)
        assert np.all(depth[valid] > 0), 'depth must be NaN or positive (REP 118)'
        assert np.all(np.isfinite(depth) | np.isnan(depth))


def test_confidence_and_depth_camera_info(session):
    outs = session.client.outputs
    depth_stamps = set(outs.by_stamp('depth'))
    for r in outs.get('confidence'):
        conf = image_to_float(r.msg)
        assert r.msg.encoding == '32FC1' and conf.shape == (H, W) and r.msg.header.frame_id == FRAME_ID
        assert np.all((conf >= 0) & (conf <= 1))
        assert stamp_to_ns(r.msg.header.stamp) in session.sent
    infos = outs.by_stamp('depth/camera_info')
    assert depth_stamps & set(infos)
    for stamp, r in infos.items():
        info = r.msg
        assert stamp in session.sent and info.header.frame_id == FRAME_ID
        assert (info.width, info.height) == (W, H)
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), session.K)


def test_pose_odometry_and_path(session):
    outs = session.client.outputs
    odoms = outs.get('odom')
    assert len(odoms) >= 6
    for r in odoms:
        o = r.msg
        assert stamp_to_ns(o.header.stamp) in session.sent
        assert o.header.frame_id == 'odom' and o.child_frame_id == 'base_link'
        p, q = o.pose.pose.position, o.pose.pose.orientation
        values = [p.x, p.y, p.z, q.x, q.y, q.z, q.w] + list(o.pose.covariance) + list(o.twist.covariance)
        t = o.twist.twist
        values += [t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z]
        assert all(math.isfinite(v) for v in values)
        assert abs(q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2 - 1) < 1e-6
        cov = np.reshape(o.pose.covariance, (6, 6))
        assert np.all(np.diag(cov) > 0) and np.allclose(cov, cov.T)
        assert np.all(np.linalg.eigvalsh(cov) > 0)
    # odom starts at the base frame's first pose
    first = odoms[0].msg.pose.pose.position
    assert abs(first.x) < 1e-6 and abs(first.y) < 1e-6 and abs(first.z) < 1e-6
    for r in outs.get('pose'):
        assert r.msg.header.frame_id == 'odom' and stamp_to_ns(r.msg.header.stamp) in session.sent
    paths = outs.get('path')
    assert all(1 <= len(r.msg.poses) <= PATH_MAX for r in paths)
    assert max(len(r.msg.poses) for r in paths) == PATH_MAX
    last = paths[-1].msg
    assert last.header.frame_id == 'odom' and last.poses[-1].header.stamp == last.header.stamp
    stamps = [stamp_to_ns(p.header.stamp) for p in last.poses]
    assert stamps == sorted(stamps) and set(stamps) <= set(session.sent)


def test_point_cloud(session):
    r = session.client.outputs.get('points')[-1]
    assert r.msg.header.frame_id == FRAME_ID and stamp_to_ns(r.msg.header.stamp) in session.sent
    xyz, rgb = pointcloud2_to_array(r.msg)
    assert 0 < len(xyz) <= (H // 4 + 1) * (W // 4 + 1)
    assert np.all(np.isfinite(xyz)) and np.all(xyz[:, 2] > 0)


def test_diagnostics_content(session):
    d = session.client.wait_diagnostics(lambda v: int(v['published']) >= 6, 10)
    for key in ('input_rate_hz', 'processing_rate_hz', 'latency_p50_ms', 'latency_p95_ms', 'inference_p50_ms',
                'inference_p95_ms', 'dropped_total', 'dropped_overload', 'dropped_bad_encoding',
                'dropped_unpaired', 'device', 'precision', 'iterations', 'num_refs', 'tracking_state',
                'untrained', 'checkpoint', 'queue_depth', 'max_queue_depth'):
        assert key in d, key
    assert d['device'] == 'cpu' and d['precision'] == 'fp32' and d['network_size'] == '128x96'
    assert d['iterations'] == '2' and d['num_refs'] == '1'
    assert int(d['received']) >= int(d['paired']) >= int(d['processed']) >= int(d['published']) >= 6
    assert float(d['input_rate_hz']) > 0 and float(d['processing_rate_hz']) >= 0
    assert 0 < float(d['inference_p50_ms']) <= float(d['inference_p95_ms']) < 60_000
    assert 0 < float(d['latency_p50_ms']) <= float(d['latency_p95_ms']) < 60_000
    assert int(d['max_queue_depth']) <= 1
    assert d['tracking_state'] in ('initializing', 'tracking', 'static', 'lost')
    states = {k[len('frames_'):]: int(v) for k, v in d.items() if k.startswith('frames_')}
    assert set(states) <= {'initializing', 'tracking', 'static', 'lost'}, states
    assert sum(states.values()) == int(d['processed']) and states.get('initializing', 0) >= 1, (states, d)
    assert d['untrained'] == ('true' if d['checkpoint'] == '' else 'false')
    if d['untrained'] == 'true':
        assert d['_level'] >= 1 and 'UNTRAINED' in d['_message']


def test_metric_depth_topic(session):
    outs = session.client.outputs
    received = outs.get('metric_depth')
    assert len(received) >= 2
    for r in received:
        msg = r.msg
        assert msg.encoding == '32FC1' and (msg.height, msg.width) == (H, W)
        assert stamp_to_ns(msg.header.stamp) in session.sent, 'metric_depth stamp is not an input stamp'
        assert msg.header.frame_id == FRAME_ID
        depth = image_to_float(msg)
        valid = np.isfinite(depth)
        assert valid.mean() > 0.9 and np.all(depth[valid] > 0)
    infos = outs.by_stamp('metric_depth/camera_info')
    assert set(infos) & set(outs.by_stamp('metric_depth'))
    for info in infos.values():
        np.testing.assert_allclose(np.reshape(info.msg.k, (3, 3)), session.K)


def test_metric_scale_with_the_default_models(session):
    """The bundled DRO and metric models on an unseen synthetic scene: the scale becomes known, and the
    published depth then agrees with the metric model's depth of the same frame."""
    client = session.client
    ok = session.stream_until(lambda: client.diagnostics().get('scale_regime') in ('converging', 'metric'),
                              90)
    d = client.diagnostics()
    assert ok, d
    for key in ('scale', 'scale_log_sigma', 'route', 'route_probability', 'metric_latency_p50_ms',
                'metric_processed', 'metric_backbone', 'scale_observations_valid'):
        assert key in d, key
    assert (d['metric_enabled'] == 'true' and d['metric_backbone'] == 'light'
            and d['route'] in ('indoor', 'outdoor'))
    assert int(d['metric_processed']) >= 1 and float(d['metric_latency_p50_ms']) > 0
    assert 0.05 < float(d['scale']) < 20 and int(d['scale_observations_valid']) >= 1
    if d['_level'] == 0:                                   # OK status: '<tracking state>, <regime>'
        assert d['_message'].endswith(d['scale_regime'])
    # once metric: depth and metric_depth of the same stamp agree in scale
    outs = session.client.outputs

    def common():
        return set(outs.by_stamp('depth')) & set(outs.by_stamp('metric_depth'))

    before = common()
    assert session.stream_until(lambda: len(common() - before) >= 3, 60)
    depth, metric = outs.by_stamp('depth'), outs.by_stamp('metric_depth')
    ratios = []
    for stamp in sorted(common() - before)[-3:]:
        a, b = image_to_float(depth[stamp].msg), image_to_float(metric[stamp].msg)
        ok = np.isfinite(a) & np.isfinite(b)
        ratios.append(float(np.median(a[ok] / b[ok])))
    assert all(0.5 < r < 2.0 for r in ratios), ratios


def test_metric_domain_can_be_forced_at_run_time(session):
    client = session.client
    res = client.set_parameters(**{'metric.domain': 'outdoor'})
    assert res[0].successful, res[0].reason
    ok = session.stream_until(lambda: client.diagnostics().get('route') == 'outdoor'
                              and client.diagnostics().get('route_domain') == 'outdoor', 60)
    assert ok, client.diagnostics()
    assert not client.set_parameters(**{'metric.domain': 'space'})[0].successful
    assert not client.set_parameters(**{'metric.precision': 'bf16'})[0].successful    # read-only
    assert client.set_parameters(**{'metric.domain': 'auto'})[0].successful


def test_iterations_can_be_set_at_run_time(session):
    client = session.client
    res = client.set_parameters(iterations=3)
    assert res[0].successful, res[0].reason
    assert client.get_parameters('iterations') == {'iterations': 3}
    d = client.wait_diagnostics(lambda v: v['iterations'] == '3', 10)
    assert d['iterations'] == '3'
    # the estimator really uses it for the next frames
    ok = session.stream_until(lambda: client.diagnostics().get('iterations_last_frame') == '3', 60)
    assert ok, client.diagnostics()
    # num_refs too: applied by the inference thread between frames
    res = client.set_parameters(num_refs=2)
    assert res[0].successful, res[0].reason
    assert session.stream_until(lambda: client.diagnostics().get('num_refs') == '2', 60), client.diagnostics()


@pytest.mark.parametrize('values,words', [({'iterations': 100}, 'iterations'),
                                          ({'iterations': -2}, 'iterations'),
                                          ({'width': 256}, 'read-only'), ({'publish_points': 'yes'}, '')])
def test_invalid_parameter_values_are_rejected_with_a_reason(session, values, words):
    res = session.client.set_parameters(**values)[0]
    assert not res.successful and res.reason and words in res.reason
    assert session.client.get_parameters('iterations') == {'iterations': 3}


def test_bad_encoding_is_counted_not_fatal(session):
    client = session.client
    before = int(client.diagnostics()['dropped_bad_encoding'])
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from dro_depth.ros.conversions import ns_to_stamp
    from dro_depth.ros.testing.player import camera_messages
    stamp = time.time_ns()
    _, info = camera_messages(session.images[0], session.K, stamp, FRAME_ID)
    bad = Image(header=Header(stamp=ns_to_stamp(stamp), frame_id=FRAME_ID), height=H, width=W,
                encoding='16UC1', step=2 * W)
    bad.data = bytes(2 * W * H)
    client.camera.info_pub.publish(info)
    client.camera.image_pub.publish(bad)
    d = client.wait_diagnostics(lambda v: int(v['dropped_bad_encoding']) > before, 10)
    assert int(d['dropped_bad_encoding']) == before + 1
    assert '16UC1' in d['last_bad_encoding_reason']
    # still alive and producing
    n = client.outputs.count('depth')
    assert session.stream_until(lambda: client.outputs.count('depth') > n, 30)


def test_bad_camera_info_and_missing_camera_info_are_counted(session):
    client = session.client
    d0 = client.diagnostics()
    # an uncalibrated camera (K and P all zero) is bad input; rectified input is projected with P
    from dro_depth.ros.testing.player import camera_messages
    stamp = time.time_ns()
    image, info = camera_messages(session.images[0], session.K, stamp, FRAME_ID)
    info.k = [0.0] * 9
    info.p = [0.0] * 12
    client.camera.info_pub.publish(info)
    client.camera.image_pub.publish(image)
    d = client.wait_diagnostics(lambda v: int(v['dropped_bad_input']) > int(d0['dropped_bad_input']), 10)
    assert 'focal' in d['last_bad_input_reason']
    # images without camera_info: evicted after pairing_queue_size (3) newer ones, counted as unpaired
    session.stream(6, with_info=False)
    d = client.wait_diagnostics(lambda v: int(v['dropped_unpaired']) >= int(d0['dropped_unpaired']) + 3, 10)
    assert int(d['dropped_unpaired']) >= int(d0['dropped_unpaired']) + 3
    assert 'CameraInfo' in d['last_unpaired_reason']
    assert int(d['pending_unpaired']) <= 3


def test_sigint_exits_cleanly(session):
    code = session.proc.stop(signal.SIGINT, timeout=30)
    log = session.proc.log()
    assert code == 0, log[-3000:]
    assert 'Traceback' not in log, log[-3000:]


@pytest.mark.parametrize('params,words', [({'width': 100}, 'width'),
                                          ({'device': 'cpu', 'checkpoint': '/nonexistent/dro.safetensors'},
                                           'not found')])
def test_invalid_startup_parameters_exit_with_a_reason(ros_env, params, words):
    import subprocess

    from dro_depth.ros.testing.process import NodeProcess
    proc = NodeProcess(params, command=_installed_executable(), env=ros_env).start()
    try:
        code = proc.proc.wait(60)
    except subprocess.TimeoutExpired:
        code = proc.stop(signal.SIGKILL)
    finally:
        proc.stop()
    log = proc.log()
    assert code == 2, log[-2000:]
    assert 'FATAL' in log and words in log and 'Traceback' not in log, log[-2000:]
