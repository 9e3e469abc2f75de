"""Bag replay with use_sim_time: a rosbags-written bag with stamps in the past (t = 1000 s) replayed
with /clock (like ``ros2 bag play --clock``) to the installed sfm_node; outputs carry the bag's stamps and
the node's clock follows /clock.

The stamp rule over DDS (dro_depth.sfm.stamps): a stamp is published at most once per ROS timeline. Without a
jump of ROS time, X, Y, X - 5 s, X publishes X once (the second X is counted as duplicate_stamp); when the bag
loops and /clock goes back (``ros2 bag play --loop --clock``), the node starts a new timeline and publishes
the bag's stamps again.
"""
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')
pytest.importorskip('rosbags', reason='rosbags is not installed')

from dro_depth.ros.conversions import stamp_to_ns  # noqa: E402

T0_NS = 1000 * 1_000_000_000
N, FPS, H, W = 24, 12.0, 96, 128
FRAME_ID = 'bag_camera_optical_frame'


def _frames():
    try:
        from dro_depth.data.synthetic import generate_sequence
        seq = generate_sequence('indoor', seed=5, n_frames=N, height=H, width=W)
        return seq.images, seq.K
    except ImportError:
        rng = np.random.default_rng(1)
        tex = rng.integers(0, 256, (H, W + 3 * N, 3), dtype=np.uint8)
        K = np.array([[90.0, 0, W / 2 - 0.5], [0, 90.0, H / 2 - 0.5], [0, 0, 1]])
        return np.stack([tex[:, 3 * i:3 * i + W] for i in range(N)]), K


def _write_bag(path):
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    from dro_depth.ros.testing.player import camera_messages

    images, K = _frames()
    stamps = [T0_NS + int(i * 1e9 / FPS) for i in range(N)]
    typestore = get_typestore(Stores.LATEST)
    with Writer(path, version=9) as writer:
        c_img = writer.add_connection('/cam/image_raw', 'sensor_msgs/msg/Image', typestore=typestore)
        c_info = writer.add_connection('/cam/camera_info', 'sensor_msgs/msg/CameraInfo', typestore=typestore)
        for rgb, stamp in zip(images, stamps):
            image, info = camera_messages(rgb, K, stamp, FRAME_ID, encoding='bgr8')
            writer.write(c_info, stamp, serialize_message(info))
            writer.write(c_img, stamp, serialize_message(image))
    return stamps


def test_replay_with_sim_time_keeps_bag_stamps(ros_env, tmp_path):
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.testing.player import play_bag
    from dro_depth.ros.testing.process import NodeProcess

    bag = tmp_path / 'camera_bag'
    stamps = _write_bag(bag)
    exe = Path(sys.prefix) / 'lib' / 'dro_depth' / 'sfm_node'
    assert exe.is_file(), f'{exe} is missing: run `make install` first'
    # DRO and the metric model on torch: an engine compiling in the background (ONNX export holding the GIL,
    # then OpenVINO) starves the executor on 2 cores, and best-effort images overflow the reader's history
    # (3-6 of the loop's 24 were lost while the metric engine compiled); the stamps are what this test is about
    params = {'use_sim_time': True, 'device': 'cpu', 'cpu_threads': 1, 'width': 128, 'height': 96,
              'iterations': 1, 'num_refs': 1, 'diagnostics_period': 0.2, 'backend': 'torch',
              'metric.backend': 'torch'}
    proc = NodeProcess(params, remappings={'image': '/cam/image_raw', 'camera_info': '/cam/camera_info'},
                       command=[sys.executable, str(exe)], env=ros_env, workdir=tmp_path / 'node').start()
    client = SfmClient(image_topic='unused/image', info_topic='unused/camera_info')
    try:
        assert client.outputs.wait(lambda o: o.publishers_ready(client.node), 90), proc.log()[-3000:]
        # handshake: play once the node's clock shows the bag's time (it receives our /clock)
        def node_on_bag_time():
            stamp = client.diagnostics().get('_stamp_ns')
            return stamp is not None and int(stamp) >= T0_NS

        counts = play_bag(client.node, bag, rate=1.0, clock=True, wait_for_subs=60, ready=node_on_bag_time)
        assert node_on_bag_time(), 'the node never followed /clock'
        assert counts == {'/cam/image_raw': N, '/cam/camera_info': N}
        ok = client.outputs.wait(lambda o: o.count('depth') >= 3 and o.count('odom') >= 3, 60)
        assert ok, proc.log()[-3000:]
        # a last frame may still be in inference: wait until the node has answered everything it took
        client.wait_diagnostics(lambda v: v.get('received') == str(N) and v.get('pending_unpaired') == '0'
                                and v.get('in_inference') == '0' and v.get('queue_depth') == '0', 30)

        bag_stamps = set(stamps)
        for name in ('depth', 'depth/camera_info', 'confidence', 'pose', 'odom', 'path'):
            got = client.outputs.get(name)
            assert got, name
            for r in got:
                assert stamp_to_ns(r.msg.header.stamp) in bag_stamps, f'{name} stamp is not a bag stamp'
        for r in client.outputs.get('metric_depth'):       # the metric branch (on by default) as well
            assert stamp_to_ns(r.msg.header.stamp) in bag_stamps, 'metric_depth stamp is not a bag stamp'
        assert client.outputs.latest('depth').header.frame_id == FRAME_ID
        d = client.diagnostics()
        # every image arrived, paired with its CameraInfo, and was either answered or dropped for overload
        assert int(d['received']) == N and int(d['paired']) == N and int(d['dropped_bad_encoding']) == 0, d
        assert int(d['published']) + int(d['dropped_overload']) == N, d
        # the node clock follows /clock: its diagnostics are stamped in bag time, not wall time
        diag_stamp_s = int(d['_stamp_ns']) * 1e-9
        assert 1000.0 <= diag_stamp_s <= 1000.0 + N / FPS + 1.0, diag_stamp_s
        # and latency input stamp -> publish is measured in sim time: small, not ~1.7e9 s
        assert 0 <= float(d['latency_p50_ms']) < 30_000

        _x_y_back_x_publishes_x_once(client, d)
        _looped_bag_publishes_its_stamps_again(client, bag, set(stamps))
    finally:
        client.close()
        code = proc.stop(signal.SIGINT, timeout=30)
    assert code == 0, proc.log()[-3000:]


def _published(client):
    from collections import Counter
    return Counter(stamp_to_ns(r.msg.header.stamp) for r in client.outputs.get('depth'))


def _x_y_back_x_publishes_x_once(client, d):
    """ROS time does not move (no /clock now): X, Y, X - 5 s, X. The last X is time already published."""
    from dro_depth.ros.testing.player import CameraStreamer

    camera = CameraStreamer(client.node, '/cam/image_raw', '/cam/camera_info')
    images, K = _frames()
    X = T0_NS + 10 * 1_000_000_000                  # after the bag; X - 5 s lies after the bag too
    sequence = [X, X + 83_333_333, X - 5 * 1_000_000_000, X]
    for i, stamp in enumerate(sequence):
        received = int(client.diagnostics()['received'])
        camera.publish(images[i], K, stamp, FRAME_ID)
        # paced: each frame is answered or refused before the next (no overload drop can hide a refusal)
        d = client.wait_diagnostics(lambda v: int(v['received']) == received + 1 and v['queue_depth'] == '0'
                                    and v['in_inference'] == '0', 30)
        assert int(d['received']) == received + 1, (i, d)
    client.outputs.wait(lambda o: all(s in o.by_stamp('depth') for s in sequence[:3]), 10)   # in flight
    counts = _published(client)
    assert [counts[s] for s in sequence[:3]] == [1, 1, 1], counts        # X - 5 s: a new run, published
    assert counts[X] == 1, 'X was published twice without ROS time going back'
    assert int(d['dropped_duplicate_stamp']) == 1 and 'already published' in d['last_duplicate_stamp_reason']
    assert d['timeline'] == '0'


def _looped_bag_publishes_its_stamps_again(client, bag, bag_stamps):
    """The bag again with /clock: ROS time jumps back, a new timeline starts, its stamps come out again."""
    from dro_depth.ros.testing.player import play_bag

    before = client.diagnostics()
    seen = _published(client)
    # handshake: /clock goes back to the bag's start until the node has seen the jump (a new timeline)
    counts = play_bag(client.node, bag, rate=1.0, clock=True, wait_for_subs=30,
                      ready=lambda: client.diagnostics().get('timeline') == '1')
    assert counts == {'/cam/image_raw': N, '/cam/camera_info': N}
    # every image of the loop arrives (no engine compiling beside it: see the parameters above)
    d = client.wait_diagnostics(lambda v: int(v['received']) == int(before['received']) + N
                                and v['pending_unpaired'] == '0' and v['in_inference'] == '0'
                                and v['queue_depth'] == '0', 30)
    received = int(d['received']) - int(before['received'])
    assert received == N, (received, d)
    assert d['timeline'] == '1', d                   # one backward jump of ROS time seen
    client.outputs.wait(lambda o: o.count('depth') >= sum(seen.values()) + int(d['published'])
                        - int(before['published']), 10)                # the last depth may be in flight
    again = _published(client) - seen
    assert set(again) <= bag_stamps and sum(again.values()) >= 3, again
    assert any(seen[s] for s in again), 'the loop published none of the stamps of the first pass'
    assert all(n == 1 for n in again.values()), 'a stamp published twice within one timeline'
    keys = ('published', 'dropped_overload', 'dropped_duplicate_stamp')
    delta = {k: int(d[k]) - int(before[k]) for k in keys}
    # nothing the node received is lost: each is published, dropped for overload, or (at most the first,
    # which may overtake the /clock jump on another topic) refused as already published
    assert delta['dropped_duplicate_stamp'] <= 1 and sum(delta.values()) == received, (delta, received)
