"""What the node publishes for given estimator results (no network): stamps, frames, odometry maths,
covariance, twist, lost tracking and the bounded path, received by a subscriber in another participant."""
import numpy as np
import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')


def _result(z, stamp_s, state, cov, camera):
    from dro_depth.sfm.estimator import FrameResult
    T = np.eye(4)
    T[2, 3] = z                                   # moving forward along the optical axis
    depth = np.full((camera.height, camera.width), 3.0, np.float32)
    depth[0, :] = np.nan
    conf = np.full_like(depth, 0.5)
    return FrameResult(stamp=stamp_s, depth=depth, confidence=conf, T_world_cam=T, covariance=cov, state=state,
                       reset=state.value == 'lost', camera=camera)


def test_outputs_for_tracking_then_lost(ros_env):
    import rclpy

    from dro_depth.sfm.estimator import TrackingState
    from dro_depth.geometry import PinholeCamera
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.conversions import image_to_float, stamp_to_ns
    from dro_depth.ros.frames import LARGE_VARIANCE, TfBridge
    from dro_depth.ros.outputs import OutputPublisher
    from dro_depth.ros.params import defaults
    from dro_depth.ros.testing.player import camera_messages, wait_for

    values = defaults()
    values.update(path_max_length=3, publish_points=True, points_decimation=2, camera_frame='')
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node('outputs_test', context=ctx, namespace='/ot')
    client = SfmClient(node_name='/ot/outputs_test', namespace='/ot', client_name='outputs_listener')
    try:
        outputs = OutputPublisher(node, values, TfBridge(node, publish=True))
        assert wait_for(lambda: outputs.points.get_subscription_count() > 0
                        and outputs.odom.get_subscription_count() > 0, 10)
        assert client.outputs.wait(lambda o: o.publishers_ready(client.node), 10)
        K = np.array([[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]])
        camera = PinholeCamera(K, 32, 24)
        rgb = np.zeros((24, 32, 3), np.uint8)
        cov = np.diag([1e-4, 2e-4, 3e-4, 1e-6, 2e-6, 3e-6])      # optical x, y, z, rx, ry, rz
        stamps = [7_000_000_000 + k * 100_000_000 for k in range(5)]
        for k, stamp in enumerate(stamps):
            state = TrackingState.LOST if k == 4 else TrackingState.TRACKING
            image, info = camera_messages(rgb, K, stamp, 'cam_optical')
            z = 0.1 * min(k, 3)                               # the estimator holds the pose while lost
            outputs.publish(_result(z, stamp * 1e-9, state, cov * (k + 1), camera), image, info, rgb, 'metric')
        outs = client.outputs
        assert outs.wait(lambda o: all(o.count(n) == 5 for n in ('depth', 'odom', 'pose', 'path', 'points')), 10)

        for name in ('depth', 'depth/camera_info', 'confidence', 'points'):
            assert [stamp_to_ns(r.msg.header.stamp) for r in outs.get(name)] == stamps, name
            assert all(r.msg.header.frame_id == 'cam_optical' for r in outs.get(name)), name
        depth = image_to_float(outs.get('depth')[0].msg)
        assert np.isnan(depth[0]).all() and np.all(depth[1:] == 3.0)

        odoms = [r.msg for r in outs.get('odom')]
        assert [stamp_to_ns(o.header.stamp) for o in odoms] == stamps
        assert all(o.header.frame_id == 'odom' and o.child_frame_id == 'base_link' for o in odoms)
        # forward along optical z = +x in odom, 0.1 m per 0.1 s -> 1 m/s forward in the base frame
        assert [round(o.pose.pose.position.x, 9) for o in odoms] == [0.0, 0.1, 0.2, 0.3, 0.3]
        assert all(abs(o.pose.pose.position.y) < 1e-12 and abs(o.pose.pose.position.z) < 1e-12 for o in odoms)
        assert odoms[0].twist.covariance[0] == LARGE_VARIANCE       # no velocity yet on the first frame
        for o in odoms[1:4]:
            assert o.twist.twist.linear.x == pytest.approx(1.0) and abs(o.twist.twist.linear.y) < 1e-9
            assert o.twist.covariance[0] < 1.0
        # covariance rotated into odom axes: optical z (3e-4) is odom x, optical x (1e-4) is odom y
        c = np.reshape(odoms[2].pose.covariance, (6, 6))
        np.testing.assert_allclose(np.diag(c), np.array([3e-4, 1e-4, 2e-4, 3e-6, 1e-6, 2e-6]) * 3)
        # lost tracking: pose held, very large covariance, zero twist with very large covariance
        lost = odoms[4]
        assert np.all(np.diag(np.reshape(lost.pose.covariance, (6, 6))) == LARGE_VARIANCE)
        assert lost.twist.twist.linear.x == 0.0 and lost.twist.covariance[0] == LARGE_VARIANCE

        poses = [r.msg for r in outs.get('pose')]
        assert all(p.header.frame_id == 'odom' for p in poses)
        # camera pose = odom -> optical frame: its z axis (forward) is odom x
        q = poses[0].pose.orientation
        from dro_depth.geometry import quaternion_to_matrix
        np.testing.assert_allclose(quaternion_to_matrix([q.x, q.y, q.z, q.w]) @ [0, 0, 1], [1, 0, 0], atol=1e-9)
        paths = [r.msg for r in outs.get('path')]
        assert [len(p.poses) for p in paths] == [1, 2, 3, 3, 3]
        assert [stamp_to_ns(p.header.stamp) for p in paths[-1].poses] == stamps[2:]
        assert outputs.info()['tf'] in ('publishing', 'tf2_ros missing')
    finally:
        client.close()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
