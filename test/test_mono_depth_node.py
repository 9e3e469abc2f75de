"""The installed mono_depth_node over real DDS (loopback), with small random-weight Depth Anything V2 files.

Metric: depth is the core's metres at the input size, stamp and frame, NaN outside the run-time range;
relative_depth is 1 / depth; the cloud is dense. Relative: only relative_depth exists. Bad input is
counted per reason and the node keeps answering. A wrong checkpoint ends the start with exit code 2 and one
FATAL line.
"""
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')
pytestmark = pytest.mark.ros

from dro_depth.ros.memory import glibc  # noqa: E402

H, W, INPUT = 48, 64, 70
K = np.array([[50.0, 0.0, 32.0], [0.0, 50.0, 24.0], [0.0, 0.0, 1.0]])
METRIC_TOPICS = ['depth', 'depth/camera_info', 'relative_depth', 'points', '/diagnostics']


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """One reduced (4-block vits) random model under a metric and a relative released name."""
    from dro_depth.models.checkpoints import save_state_dict
    from dro_depth.models.depth_anything import build_depth_anything
    torch.manual_seed(0)
    sd = build_depth_anything('vits', depth=4, hooks=(0, 1, 2, 3)).state_dict()
    d = tmp_path_factory.mktemp('da')
    return {kind: str(save_state_dict(sd, d / name)) for kind, name in (
        ('metric', 'depth_anything_v2_metric_hypersim_vits.safetensors'),
        ('relative', 'depth_anything_v2_vits.safetensors'))}


def _estimator(path):
    """The core estimator the node runs (its predictions are what the node must publish)."""
    from dro_depth.mono import MonoDepthEstimator
    from dro_depth.mono.checkpoint import open_mono_checkpoint
    ckpt, model = open_mono_checkpoint(path)
    return MonoDepthEstimator(ckpt.config(input_size=INPUT, device='cpu'), model=model)


def _threshold_in_a_gap(values):
    """A threshold between two well-separated values near the median (robust to float noise)."""
    v = np.unique(values)
    lo, hi = len(v) // 4, 3 * len(v) // 4
    i = lo + int(np.argmax(np.diff(v[lo:hi + 1])))
    return float(v[i] + v[i + 1]) / 2


def _start(tmp_path, env, params):
    from dro_depth.ros.testing.process import NodeProcess, write_params_file
    exe = Path(sys.prefix) / 'lib' / 'dro_depth' / 'mono_depth_node'
    if not exe.is_file():
        pytest.skip(f'{exe} not installed (run make install)')
    base = {'input_size': INPUT, 'device': 'cpu', 'cpu_threads': 1, 'diagnostics_period': 0.2,
            'image_qos_reliability': 'reliable'}
    pfile = write_params_file(tmp_path / 'mono.yaml', {**base, **params}, node_name='mono_depth_node')
    return NodeProcess(params_file=pfile, command=[sys.executable, str(exe)], env=env,
                       workdir=tmp_path).start()


def _client(topics):
    from dro_depth.ros.testing.client import SfmClient
    return SfmClient('/mono_depth_node', topics=topics, client_name='mono_client')


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _publish_bad(client, stamp_ns, encoding=None, info_width=None):
    from dro_depth.ros.testing.player import camera_messages
    image, info = camera_messages(_image(), K, stamp_ns, 'cam_optical')
    if encoding:
        image.encoding = encoding
    if info_width:
        info.width = info_width
    client.camera.info_pub.publish(info)
    client.camera.image_pub.publish(image)


def _expect_drop(client, proc, reason, publish):
    """One bad input at a time, waiting for its counter (no reliance on timing or DDS buffering)."""
    before = int(client.diagnostics().get(f'dropped_{reason}', 0))
    publish()
    d = client.wait_diagnostics(lambda v: int(v.get(f'dropped_{reason}', 0)) > before, 30)
    assert int(d.get(f'dropped_{reason}', 0)) > before, (reason, d, proc.log()[-2000:])
    return d


def test_metric_outputs_runtime_range_and_bad_input(ros_env, tmp_path, files):
    from dro_depth.ros.conversions import image_to_float, pointcloud2_to_array, stamp_to_ns
    rgb = _image()
    est = _estimator(files['metric'])
    ref = est.predict(rgb).depth
    proc = _start(tmp_path, ros_env, {'checkpoint': files['metric'], 'points_decimation': 2,
                                      'points_max_range': 100.0, 'points_edge_threshold': 0.0})
    client = _client(METRIC_TOPICS)
    try:
        assert client.wait_for_node(90), proc.log()[-3000:]
        stamp = 1_000_000_123                     # integer-ns stamps: 123 ns must survive
        client.camera.publish(rgb, K, stamp, 'cam_optical')
        outs = ('depth', 'depth/camera_info', 'relative_depth', 'points')
        arrived = client.outputs.wait(lambda o: all(stamp in o.by_stamp(t) for t in outs), 60)
        assert arrived, proc.log()[-3000:]
        got = {t: client.outputs.by_stamp(t)[stamp].msg for t in outs}
        for msg in got.values():
            assert msg.header.frame_id == 'cam_optical' and stamp_to_ns(msg.header.stamp) == stamp
        assert got['depth'].encoding == '32FC1' and (got['depth'].width, got['depth'].height) == (W, H)
        depth = image_to_float(got['depth'])
        ok = np.isfinite(depth)
        assert ok.all() and (depth > 0).all() and (depth < 20.0).all()       # sigmoid x 20 m (hypersim)
        np.testing.assert_allclose(depth, ref, rtol=1e-5)                   # metres at the input size
        np.testing.assert_allclose(image_to_float(got['relative_depth']), 1.0 / ref, rtol=1e-5)
        cloud = got['points']
        xyz, _ = pointcloud2_to_array(cloud)
        assert cloud.is_dense and len(xyz) > 0 and np.isfinite(xyz).all()
        assert ref.min() - 1e-4 <= xyz[:, 2].min() and xyz[:, 2].max() <= ref.max() + 1e-4

        # run-time range: validated together, applied on the next frame
        threshold = float(np.median(ref))
        assert client.set_parameters(max_depth=threshold)[0].successful
        rejected = client.set_parameters(min_depth=threshold + 1.0)[0]
        assert not rejected.successful and 'min_depth' in rejected.reason
        assert not client.set_parameters(input_size=98)[0].successful          # read-only

        bad = _expect_drop(client, proc, 'bad_encoding', lambda: _publish_bad(client, 2_000_000_000, '16UC1'))
        assert '16UC1' in bad['last_bad_encoding_reason']
        bad = _expect_drop(client, proc, 'bad_input', lambda: _publish_bad(client, 2_500_000_000,
                                                                           info_width=W + 16))
        assert 'camera_info' in bad['last_bad_input_reason']
        tiny, K_tiny = _image()[:10].copy(), K.copy()                           # < 14 px: a clear reason
        K_tiny[1, 2] = 5.0
        bad = _expect_drop(client, proc, 'bad_input',
                           lambda: client.camera.publish(tiny, K_tiny, 2_600_000_000))
        assert 'too small' in bad['last_bad_input_reason']
        _expect_drop(client, proc, 'duplicate_stamp',
                     lambda: client.camera.publish(rgb, K, stamp, 'cam_optical'))

        grey = rgb[:, :, 1].copy()               # mono8 is accepted (three equal channels)
        client.camera.publish(grey, K, 2_800_000_000, 'cam_optical', encoding='mono8')
        assert client.outputs.wait(lambda o: 2_800_000_000 in o.by_stamp('relative_depth'), 30), \
            proc.log()[-3000:]
        grey_out = image_to_float(client.outputs.by_stamp('relative_depth')[2_800_000_000].msg)
        grey_ref = est.predict(np.repeat(grey[:, :, None], 3, axis=2)).depth
        np.testing.assert_allclose(grey_out, 1.0 / grey_ref, rtol=1e-5)

        later = 3_000_000_000                    # still answering valid frames, with the new range
        client.camera.publish(rgb, K, later, 'cam_optical')
        assert client.outputs.wait(lambda o: later in o.by_stamp('depth'), 30), proc.log()[-3000:]
        depth = image_to_float(client.outputs.by_stamp('depth')[later].msg)
        np.testing.assert_array_equal(np.isnan(depth), ref >= threshold)

        # the optional confidence filter: flip consistency, as the core computes it
        from dro_depth.geometry.cloud import CloudFilter, filter_points
        from dro_depth.mono.confidence import flip_consistency, mirrored_depth
        conf = flip_consistency(ref, mirrored_depth(est, rgb))
        min_conf = _threshold_in_a_gap(conf[::2, ::2])
        assert client.set_parameters(max_depth=80.0)[0].successful
        assert client.set_parameters(points_min_confidence=min_conf)[0].successful
        expected = filter_points(ref, K, CloudFilter(2, 0.1, 100.0, min_conf, 0.0), conf).xyz
        assert 0 < len(expected) < len(xyz)
        last = 4_000_000_000
        client.camera.publish(rgb, K, last, 'cam_optical')
        assert client.outputs.wait(lambda o: last in o.by_stamp('points'), 30), proc.log()[-3000:]
        filtered, _ = pointcloud2_to_array(client.outputs.by_stamp('points')[last].msg)
        np.testing.assert_allclose(filtered, expected, rtol=1e-4, atol=1e-5)
        # a report made after the last frame (frames 1, 2.8, 3 and 4 s published)
        d = client.wait_diagnostics(
            lambda v: int(v.get('published', 0)) >= 4 and 'dropping' not in v['_message'], 10)
        assert d['worker_alive'] == 'true' and d['output'] == 'metric depth', d
        assert d['flip_confidence'] == 'true' and d['_message'] == 'publishing depth', d
        if glibc() is not None:         # the node applies the malloc settings (dro_depth.ros.memory)
            assert d['malloc'].startswith('glibc: mmap_threshold 1048576'), d
        assert proc.alive()
    finally:
        client.close()
        code = proc.stop(signal.SIGINT)
    assert code == 0, proc.log()[-3000:]


def test_relative_checkpoint_publishes_relative_depth_only(ros_env, tmp_path, files):
    from dro_depth.ros.conversions import image_to_float, stamp_to_ns
    from dro_depth.ros.testing.player import wait_for
    rgb = _image(1)
    ref = _estimator(files['relative']).predict(rgb).relative
    proc = _start(tmp_path, ros_env, {'checkpoint': files['relative']})
    client = _client(METRIC_TOPICS)
    try:
        ready = client.camera.wait_for_subscribers(90) and \
            wait_for(lambda: client.outputs.publishers_ready(client.node, ['relative_depth']), 30)
        assert ready, proc.log()[-3000:]
        stamp = 5_000_000_007
        client.camera.publish(rgb, K, stamp, 'cam_optical')
        assert client.outputs.wait(lambda o: stamp in o.by_stamp('relative_depth'), 60), proc.log()[-3000:]
        msg = client.outputs.by_stamp('relative_depth')[stamp].msg
        assert msg.encoding == '32FC1' and stamp_to_ns(msg.header.stamp) == stamp
        np.testing.assert_allclose(image_to_float(msg), ref, rtol=1e-5, atol=1e-6)
        for topic in ('depth', 'depth/camera_info', 'points'):          # never depth from a relative model
            assert client.outputs.subscriptions[topic].get_publisher_count() == 0, topic
            assert client.outputs.count(topic) == 0, topic
        d = client.wait_diagnostics(lambda v: int(v.get('published', 0)) >= 1, 10)
        assert d['output'].startswith('relative_depth only'), d
        assert d['_message'] == 'publishing relative_depth', d
    finally:
        client.close()
        code = proc.stop(signal.SIGINT)
    assert code == 0, proc.log()[-3000:]


@pytest.mark.parametrize('case', ['relative_as_metric', 'metric_as_relative', 'encoder', 'missing'])
def test_wrong_checkpoint_ends_the_start_with_one_reason(ros_env, tmp_path, files, case):
    params, reason = {
        'relative_as_metric': ({'checkpoint': files['relative'], 'kind': 'metric'},
                               'is a relative Depth Anything V2 checkpoint'),
        'metric_as_relative': ({'checkpoint': files['metric'], 'kind': 'relative'},
                               "is a metric (indoor) Depth Anything V2 checkpoint but kind is 'relative'"),
        'encoder': ({'checkpoint': files['relative'], 'encoder': 'vitb'}, 'encoder mismatch'),
        'missing': ({'checkpoint': str(tmp_path / 'depth_anything_v2_vits.pth')}, 'checkpoint not found'),
    }[case]
    proc = _start(tmp_path, ros_env, params)
    try:
        code = proc.proc.wait(120)
    finally:
        proc.stop(signal.SIGKILL)
    log = proc.log()
    fatal = [line for line in log.splitlines() if 'FATAL' in line]
    assert code == 2 and len(fatal) == 1 and reason in fatal[0], log[-3000:]
    assert 'Traceback' not in log, log[-3000:]
