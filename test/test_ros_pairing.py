"""Image + CameraInfo pairing by exact stamp, with bounded buffers and counted misses."""
import sys
import threading

import numpy as np

from dro_depth.ros.pairing import ExactTimePairer


def test_pairs_in_either_arrival_order():
    p = ExactTimePairer(queue_size=4)
    assert p.add_info(10, 'info10') is None
    assert p.add_image(10, 'img10') == ('img10', 'info10')
    assert p.add_image(20, 'img20') is None
    assert p.add_info(20, 'info20') == ('img20', 'info20')
    assert p.paired == 2 and p.pending_images == 0 and p.pending_infos == 0


def test_different_stamps_never_pair():
    p = ExactTimePairer(queue_size=4)
    assert p.add_image(10, 'img') is None
    assert p.add_info(11, 'info') is None
    assert p.paired == 0 and p.pending_images == 1 and p.pending_infos == 1


def test_unmatched_images_are_evicted_counted_and_bounded():
    unpaired = []
    p = ExactTimePairer(queue_size=3, on_unpaired=lambda img, reason: unpaired.append((img, reason)))
    for i in range(10):
        p.add_image(i, f'img{i}')
        assert p.pending_images <= 3
    assert p.unpaired_images == 7 and [img for img, _ in unpaired] == [f'img{i}' for i in range(7)]
    assert 'no CameraInfo has been received' in unpaired[0][1]
    # once infos flow, the reason says the matching stamp never came
    p.add_info(100, 'info100')
    p.add_image(11, 'img11')
    assert 'same stamp' in unpaired[-1][1]
    # the waiting ones still pair when their info arrives late
    assert p.add_info(9, 'info9') == ('img9', 'info9')


def test_info_buffer_is_bounded_too():
    p = ExactTimePairer(queue_size=2)
    for i in range(5):
        p.add_info(i, i)
    assert p.pending_infos == 2 and p.unpaired_infos == 3
    assert p.add_image(4, 'img') == ('img', 4)
    assert p.add_image(0, 'img0') is None        # evicted info 0 is gone


def test_duplicate_image_stamp_keeps_the_newer():
    unpaired = []
    p = ExactTimePairer(queue_size=4, on_unpaired=lambda img, reason: unpaired.append((img, reason)))
    p.add_image(5, 'old')
    p.add_image(5, 'new')
    assert p.duplicate_images == 1 and unpaired[0][0] == 'old'
    assert p.add_info(5, 'info') == ('new', 'info')


def test_thread_safety_under_concurrent_streams():
    """Both streams carry every stamp and nothing is evicted, so every image must be paired exactly once.

    Without the lock, add_image and add_info can each miss the other's message and both store theirs: a
    pair is lost (left pending). A barrier makes both threads add the same stamp at the same moment, and a
    tiny switch interval lets the interpreter switch between a lookup and a store.
    """
    n = 1500
    p = ExactTimePairer(queue_size=2 * n)
    pairs = []
    barrier = threading.Barrier(2)

    def stream(add):
        for i in range(n):
            barrier.wait(10)
            r = add(i, i)
            if r:
                pairs.append(r)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=stream, args=(add,)) for add in (p.add_image, p.add_info)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        sys.setswitchinterval(old)
    assert sorted(a for a, _ in pairs) == list(range(n)), 'a pair was lost or made twice'
    assert all(a == b for a, b in pairs)
    assert p.pending_images == 0 and p.pending_infos == 0 and p.paired == n


def test_live_pairing_over_ros(ros_env):
    """CameraPairing on a real node: pairs by stamp and reports images whose CameraInfo is missing."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from dro_depth.ros.pairing import CameraPairing
    from dro_depth.ros.testing.player import CameraStreamer, wait_for
    from dro_depth.ros.qos import input_qos

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    try:
        node = rclpy.create_node('pairing_test', context=ctx)
        executor.add_node(node)
        pairs, unpaired = [], []
        pairing = CameraPairing(node, input_qos('reliable', 10), lambda img, info: pairs.append((img, info)),
                                on_unpaired=lambda img, reason: unpaired.append(reason), queue_size=3,
                                image_topic='pt/image', info_topic='pt/camera_info',
                                use_message_filters=False)
        cam = CameraStreamer(node, 'pt/image', 'pt/camera_info')
        spin = threading.Thread(target=executor.spin, daemon=True)
        spin.start()
        assert cam.wait_for_subscribers(10)
        rgb = np.zeros((16, 16, 3), np.uint8)
        K = np.array([[10.0, 0, 8], [0, 10.0, 8], [0, 0, 1]])
        for i in range(5):
            cam.publish(rgb, K, 1_000_000_000 + i)
        assert wait_for(lambda: len(pairs) == 5, 10)
        assert all(img.header.stamp == info.header.stamp for img, info in pairs)
        for i in range(6):
            cam.publish(rgb, K, 2_000_000_000 + i, with_info=False)
        assert wait_for(lambda: len(unpaired) == 3, 10)
        assert pairing.unpaired() == 3 and pairing.pending_unpaired() == 3
        assert 'same stamp' in unpaired[0]
    finally:
        executor.shutdown(timeout_sec=2)
        rclpy.try_shutdown(context=ctx)


def test_latched_camera_info_published_once_before_the_node(ros_env):
    """camera_info_mode 'latched': a driver that sent its CameraInfo once (transient local) before we started."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image

    from dro_depth.ros.pairing import CameraPairing
    from dro_depth.ros.testing.player import camera_messages, wait_for, wait_for_subscribers
    from dro_depth.ros.qos import input_qos, latched_qos

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    try:
        driver = rclpy.create_node('latched_driver', context=ctx)
        info_pub = driver.create_publisher(CameraInfo, 'lt/camera_info', latched_qos())
        image_pub = driver.create_publisher(Image, 'lt/image', input_qos('reliable', 5))
        rgb = np.zeros((16, 16, 3), np.uint8)
        K = np.array([[10.0, 0, 8], [0, 10.0, 8], [0, 0, 1]])
        _, info = camera_messages(rgb, K, 1)               # stamp 1 ns: never equal to an image stamp
        info_pub.publish(info)                              # once, before anyone listens

        node = rclpy.create_node('latched_test', context=ctx)
        pairs, unpaired = [], []
        CameraPairing(node, input_qos('best_effort', 5), lambda img, inf: pairs.append((img, inf)),
                      on_unpaired=lambda img, reason: unpaired.append(reason), mode='latched',
                      image_topic='lt/image', info_topic='lt/camera_info')
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        assert wait_for_subscribers([info_pub, image_pub], 10)
        assert wait_for(lambda: node.count_publishers('lt/camera_info') == 1, 10)
        # the latched message reaches the late subscriber; then every image pairs with it
        deadline_ok = False
        for i in range(50):
            image, _ = camera_messages(rgb, K, 1_000_000 + i)
            image_pub.publish(image)
            if wait_for(lambda: len(pairs) >= 3, 0.1):
                deadline_ok = True
                break
        assert deadline_ok, (len(pairs), unpaired)
        assert all(inf.header.stamp.nanosec == 1 for _, inf in pairs)
        assert all('no CameraInfo received yet' in reason for reason in unpaired)
    finally:
        executor.shutdown(timeout_sec=2)
        rclpy.try_shutdown(context=ctx)
