"""The installed stereo_node over real DDS (loopback): outputs, runtime iterations, bad input counted."""
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')
pytest.importorskip('stereo_msgs', reason='stereo_msgs (ros-stereo-msgs) is not installed')

from dro_depth.ros.memory import glibc

FX, BASELINE, W, H = 80.0, 0.1, 96, 64


def _wait(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return bool(pred())


class Harness:
    """Publishes the four inputs and collects disparity, depth and /diagnostics in its own context."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rcl_interfaces.srv import SetParameters
        from sensor_msgs.msg import CameraInfo, Image
        from stereo_msgs.msg import DisparityImage
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node('stereo_harness', context=self.ctx)
        kinds = (('image_rect', Image), ('camera_info', CameraInfo))
        self.pubs = {f'{s}/{t}': self.node.create_publisher(m, f'{s}/{t}', 10)
                     for s in ('left', 'right') for t, m in kinds}
        self.got = {'disparity': [], 'depth': [], '/diagnostics': []}
        outputs = (('disparity', DisparityImage), ('depth', Image), ('/diagnostics', DiagnosticArray))
        for topic, typ in outputs:
            self.node.create_subscription(typ, topic, lambda m, t=topic: self.got[t].append(m), 10)
        self.set_client = self.node.create_client(SetParameters, '/stereo_node/set_parameters')
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - context shut down
            pass

    def ready(self):
        return all(p.get_subscription_count() > 0 for p in self.pubs.values()) and \
            all(self.node.count_publishers(t) > 0 for t in ('disparity', 'depth'))

    def publish(self, stamp_ns, left, right, tx=-FX * BASELINE, R=None, right_stamp_ns=None,
                encodings=('rgb8', 'rgb8')):
        from sensor_msgs.msg import CameraInfo
        from dro_depth.ros.conversions import ns_to_stamp, rgb_to_image
        for side, img, enc, st in (('left', left, encodings[0], stamp_ns),
                                   ('right', right, encodings[1], right_stamp_ns or stamp_ns)):
            header = ns_to_stamp(st)
            msg = rgb_to_image(img, enc)
            msg.header.stamp, msg.header.frame_id = header, f'{side}_optical'
            p = [FX, 0.0, W / 2, tx if side == 'right' else 0.0, 0.0, FX, H / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
            info = CameraInfo(width=img.shape[1], height=img.shape[0], p=p,
                              r=list(np.eye(3).ravel() if R is None else R.ravel()),
                              k=[FX, 0.0, W / 2, 0.0, FX, H / 2, 0.0, 0.0, 1.0])
            info.header.stamp, info.header.frame_id = header, f'{side}_optical'
            self.pubs[f'{side}/camera_info'].publish(info)
            self.pubs[f'{side}/image_rect'].publish(msg)

    def diag(self):
        from dro_depth.ros.diagnostics import status_values
        for msg in reversed(self.got['/diagnostics']):
            for st in msg.status:
                if st.name.startswith('stereo_node'):
                    return status_values(st)
        return {}

    def set_param(self, name, value):
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter
        assert self.set_client.wait_for_service(timeout_sec=20)
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        fut = self.set_client.call_async(request)
        assert _wait(fut.done, 20)
        return fut.result().results[0]

    def close(self):
        import rclpy
        self.executor.shutdown(timeout_sec=2)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    from dro_depth.models.checkpoints import save_state_dict
    from dro_depth.models.stereo import REALTIME, RAFTStereo
    torch.manual_seed(0)
    model = RAFTStereo(REALTIME)
    return save_state_dict(model.state_dict(), tmp_path_factory.mktemp('w') / 'rt.safetensors',
                           metadata={'raft_stereo_config': REALTIME.to_dict()})


def _start(tmp_path, env, params):
    from dro_depth.ros.testing.process import NodeProcess, write_params_file
    exe = Path(sys.prefix) / 'lib' / 'dro_depth' / 'stereo_node'
    if not exe.is_file():
        pytest.skip(f'{exe} not installed (run make install)')
    pfile = write_params_file(tmp_path / 'stereo.yaml', params, node_name='stereo_node')
    return NodeProcess(params_file=pfile, command=[sys.executable, str(exe)], env=env,
                       workdir=tmp_path).start()


def test_stereo_node_outputs_iterations_and_bad_input(ros_env, tmp_path, weights):
    proc = _start(tmp_path, ros_env, {'checkpoint': str(weights), 'iterations': 2, 'cpu_threads': 1,
                                      'pairing_queue_size': 2, 'diagnostics_period': 0.2,
                                      'min_disparity': 0.0, 'malloc_mmap_threshold': 2 << 20,
                                      'malloc_trim_period': 0.01,
                                      'image_qos_reliability': 'reliable'})
    h = Harness()
    try:
        assert _wait(h.ready, 90), proc.log()[-3000:]
        rng = np.random.default_rng(0)
        left = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
        right = np.roll(left, -4, axis=1)
        h.publish(1_000_000_000, left, right)
        assert _wait(lambda: h.got['disparity'] and h.got['depth'], 60), proc.log()[-3000:]
        disp, depth = h.got['disparity'][-1], h.got['depth'][-1]
        assert disp.f == pytest.approx(FX) and disp.t == pytest.approx(BASELINE)
        assert depth.encoding == '32FC1' and depth.header.frame_id == 'left_optical'
        assert depth.header.stamp.sec == 1 and (depth.width, depth.height) == (W, H)
        from dro_depth.ros.conversions import image_to_float
        d, z = image_to_float(disp.image), image_to_float(depth)
        ok = np.isfinite(z)
        assert np.allclose(z[ok], FX * BASELINE / d[ok], rtol=1e-4)

        assert h.set_param('iterations', 3).successful
        rejected = h.set_param('iterations', 100)
        assert not rejected.successful and 'iterations' in rejected.reason
        assert not h.set_param('max_width', 64).successful          # read-only

        R = np.array([[1, 0, 0], [0, 0.995, -0.0998], [0, 0.0998, 0.995]])

        def count(reason):
            return int(h.diag().get(f'dropped_{reason}', 0))

        def expect(reason, publish):
            # one bad input at a time, waiting for its counter: no reliance on timing or DDS buffering
            before = count(reason)
            publish()
            assert _wait(lambda: count(reason) > before, 30), (reason, h.diag(), proc.log()[-2000:])

        expect('bad_calibration', lambda: h.publish(2_000_000_000, left, right, tx=+FX * BASELINE))
        assert 'baseline' in h.diag()['last_bad_calibration_reason']
        expect('bad_calibration', lambda: h.publish(3_000_000_000, left, right, R=R))
        assert 'not rectified' in h.diag()['last_bad_calibration_reason']
        expect('bad_size', lambda: h.publish(4_000_000_000, left, right[:, :64].copy()))
        expect('bad_encoding', lambda: h.publish(5_000_000_000, left, right, encodings=('rgb8', 'bgr8')))

        def never_matching():
            for k in range(4):
                h.publish(6_000_000_000 + k, left, right, right_stamp_ns=6_500_000_000 + k)
                time.sleep(0.05)
        expect('unpaired', never_matching)
        assert h.diag().get('iterations') == '3'
        h.publish(7_000_000_000, left, right)                             # still alive and working
        assert _wait(lambda: h.got['depth'][-1].header.stamp.sec == 7, 30)
        assert proc.alive()
        if glibc() is not None:         # the node's malloc settings are applied and it trims after frames
            assert h.diag()['malloc'].startswith('glibc: mmap_threshold 2097152'), h.diag()
            assert int(h.diag()['malloc_trims']) >= 1, h.diag()
    finally:
        h.close()
        code = proc.stop(signal.SIGINT)
    assert code == 0, proc.log()[-3000:]


def test_missing_weights_end_the_node_with_a_reason(ros_env, tmp_path):
    proc = _start(tmp_path, ros_env, {'checkpoint': '/nonexistent/raftstereo-NS.tar'})
    try:
        code = proc.proc.wait(120)
    finally:
        proc.stop(signal.SIGKILL)
    assert code == 2 and 'raftstereo-NS.tar' in proc.log(), proc.log()[-3000:]


def test_config_and_launch_file_follow_the_parameter_table():
    import yaml

    from dro_depth.ros.stereo_params import STEREO_PARAMETERS, validate_stereo
    root = Path(__file__).resolve().parents[1]
    values = yaml.safe_load((root / 'config' / 'stereo.yaml').read_text())['stereo_node']['ros__parameters']
    assert list(values) == [p.name for p in STEREO_PARAMETERS]
    assert all(validate_stereo(k, v) is None for k, v in values.items())
    text = (root / 'launch' / 'stereo.launch.py').read_text()
    for topic in ('left/image_rect', 'left/camera_info', 'right/image_rect', 'right/camera_info'):
        assert f"'{topic}'" in text
    for name in ('checkpoint', 'device', 'iterations'):
        assert name in values and f"('{name}'," in text


def test_a_bug_is_an_internal_error_not_bad_input(ros_env, capfd):
    """A plain exception inside the estimator (not a DroDepthError) is a bug: counted as internal_error,
    logged with its traceback through the node's logger, nothing published for it, the node goes on."""
    from rclpy.parameter import Parameter

    from dro_depth.models.stereo import REALTIME, RAFTStereo
    from dro_depth.ros.stereo_node import StereoNode
    from dro_depth.ros.testing.spin import spinning
    from dro_depth.stereo import StereoConfig, StereoEstimator

    class FailsOnSecond(StereoEstimator):
        calls = 0

        def estimate(self, left, right, calib):
            FailsOnSecond.calls += 1
            if FailsOnSecond.calls == 2:
                raise ValueError('simulated bug inside estimate()')    # a ValueError, not a DroDepthError
            return super().estimate(left, right, calib)

    torch.manual_seed(0)
    est = FailsOnSecond(RAFTStereo(REALTIME).eval(), StereoConfig(iterations=1))
    overrides = [Parameter('diagnostics_period', value=0.2), Parameter('image_qos_reliability', value='reliable'),
                 Parameter('publish_points', value=False)]
    with spinning(lambda ctx: StereoNode(estimator=est, context=ctx, parameter_overrides=overrides)) as node:
        h = Harness()
        try:
            assert _wait(h.ready, 30)
            left = np.random.default_rng(1).integers(0, 255, (H, W, 3), dtype=np.uint8)
            right = np.roll(left, -4, axis=1)
            for sec in (1, 2, 3):              # paced: each answered (published or counted) before the next
                before = node.stats.snapshot()
                h.publish(sec * 1_000_000_000, left, right)
                assert _wait(lambda: any(m.header.stamp.sec == sec for m in h.got['depth'])
                             or node.stats.snapshot()['drops'].get('internal_error', 0)
                             > before['drops'].get('internal_error', 0), 30), sec
            assert _wait(lambda: h.diag().get('dropped_internal_error') == '1', 10), h.diag()
            assert h.diag()['dropped_bad_input'] == '0', h.diag()        # a bug is not bad input
            assert sorted(m.header.stamp.sec for m in h.got['depth']) == [1, 3]
            assert node.worker.alive
        finally:
            h.close()
    err = capfd.readouterr().err
    assert 'Traceback' in err and 'simulated bug inside estimate()' in err and 'internal_error' in err
