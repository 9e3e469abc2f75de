"""Output collection and bag writing/playing (the demo's and tests' tooling), over a real ROS graph."""
import threading

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')
pytest.importorskip('rosbags', reason='rosbags is not installed')


def test_collected_outputs_round_trip_through_a_bag(ros_env, tmp_path):
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from dro_depth.ros.testing.collector import OutputCollector
    from dro_depth.ros.conversions import float_to_image, image_to_float, ns_to_stamp, stamp_to_ns
    from dro_depth.ros.testing.player import wait_for_subscribers
    from dro_depth.ros.qos import output_qos

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    try:
        node = rclpy.create_node('collector_test', context=ctx, namespace='/ct')
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        collector = OutputCollector(node, namespace='/ct', topics=['depth', 'odom'])
        depth_pub = node.create_publisher(Image, 'depth', output_qos())
        odom_pub = node.create_publisher(Odometry, 'odom', output_qos())
        assert wait_for_subscribers([depth_pub, odom_pub], 10)
        depth = np.full((4, 5), 2.0, np.float32)
        depth[0, 0] = np.nan
        stamps = [5_000_000_000 + i * 100_000_000 for i in range(3)]
        for s in stamps:
            depth_pub.publish(float_to_image(depth, Header(stamp=ns_to_stamp(s), frame_id='cam')))
            odom = Odometry()
            odom.header.stamp = ns_to_stamp(s)
            odom.header.frame_id = 'odom'
            odom.pose.pose.position.x = s * 1e-9
            odom_pub.publish(odom)
        assert collector.wait(lambda c: c.count('depth') == 3 and c.count('odom') == 3, 10)
        assert sorted(collector.by_stamp('depth')) == stamps
        bag = collector.write_bag(tmp_path / 'bag', storage='mcap')
    finally:
        executor.shutdown(timeout_sec=2)
        rclpy.try_shutdown(context=ctx)

    with Reader(bag) as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        assert topics == {'/depth': 'sensor_msgs/msg/Image', '/odom': 'nav_msgs/msg/Odometry'}
        rows = [(c.topic, t, raw) for c, t, raw in reader.messages()]
    assert [t for _, t, _ in rows] == sorted(t for _, t, _ in rows)
    depths = [deserialize_message(bytes(raw), Image) for topic, _, raw in rows if topic == '/depth']
    assert [stamp_to_ns(m.header.stamp) for m in depths] == stamps
    np.testing.assert_array_equal(np.isnan(image_to_float(depths[0])), np.isnan(depth))
    odoms = [(t, deserialize_message(bytes(raw), Odometry)) for topic, t, raw in rows if topic == '/odom']
    assert all(t == stamp_to_ns(m.header.stamp) for t, m in odoms)   # bag time = header stamp


def test_ground_truth_in_odom_convention_and_contact_sheet(tmp_path):
    pytest.importorskip('matplotlib')
    from dro_depth.ros.demo import contact_sheet, gt_odom_positions

    # a camera (optical frame) moving 1 m along its own z: forward, +x in odom
    poses = np.repeat(np.eye(4)[None], 3, axis=0)
    R = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])    # world z-up; optical z along world +x
    poses[:, :3, :3] = R
    poses[:, 0, 3] = [3.0, 4.0, 5.0]
    xyz = gt_odom_positions(poses)
    np.testing.assert_allclose(xyz, [[0, 0, 0], [1, 0, 0], [2, 0, 0]], atol=1e-12)
    rng = np.random.default_rng(0)
    rows = [{'index': i, 'image': rng.integers(0, 255, (12, 16, 3), dtype=np.uint8),
             'gt_depth': rng.uniform(1, 5, (12, 16)), 'depth': np.full((12, 16), np.nan),
             'confidence': rng.uniform(0, 1, (12, 16))} for i in range(2)]
    out = contact_sheet(tmp_path / 'sheet.png', rows, xyz[1:] * 0.5, xyz[1:], xyz, 'test')
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and out.stat().st_size > 10_000
