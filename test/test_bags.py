"""ROS 2 bag writing/reading (sqlite3 and mcap) with rosbags: round trips, encodings, errors."""
from pathlib import Path

import numpy as np
import pytest

from dro_depth.data.bag_writer import BagWriter, write_sequence_bag
from dro_depth.data.bags import BagError, list_topics, read_bag, read_bag_sequence
from dro_depth.data.sequence import stamp_to_ns
from dro_depth.data.synthetic import generate_sequence

STORAGES = ['sqlite3', 'mcap']


@pytest.fixture(scope='module')
def seq():
    return generate_sequence('outdoor', seed=3, n_frames=4, height=30, width=40)


@pytest.mark.parametrize('storage', STORAGES)
def test_sequence_round_trip(tmp_path, seq, storage):
    path = write_sequence_bag(seq, tmp_path / 'bag', storage=storage)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bag']  # no temporary leftovers
    assert list_topics(path) == {'/image': 'sensor_msgs/msg/Image',
                                 '/camera_info': 'sensor_msgs/msg/CameraInfo',
                                 '/depth': 'sensor_msgs/msg/Image',
                                 '/pose': 'geometry_msgs/msg/PoseStamped'}
    frames = list(read_bag(path, depth_topic='/depth', pose_topic='pose'))
    assert len(frames) == len(seq)
    for i, f in enumerate(frames):
        assert f.stamp_ns == stamp_to_ns(float(seq.stamps[i]))
        assert abs(f.stamp - seq.stamps[i]) < 1e-6
        np.testing.assert_array_equal(f.image, seq.images[i])
        np.testing.assert_array_equal(f.depth, seq.depths[i])  # NaN sky included (NaN == NaN here)
        np.testing.assert_allclose(f.pose, seq.poses[i], atol=1e-12)
        np.testing.assert_array_equal(f.K, seq.K)
        assert f.frame_id == 'camera_optical_frame' and f.encoding == 'rgb8'
        assert f.distortion_model == 'plumb_bob'
    assert np.isnan(frames[0].depth).any()
    back = read_bag_sequence(path, depth_topic='depth')
    assert back.poses is None and back.depths.shape == seq.depths.shape


@pytest.mark.parametrize('storage', STORAGES)
def test_encodings_and_camera_info_pairing(tmp_path, storage):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((6, 8, 1), 7, np.uint8)], -1)
    mono = rng.integers(0, 255, (6, 8), dtype=np.uint8)
    mm = rng.integers(1, 5000, (6, 8)).astype(np.uint16)
    mm[0, 0] = 0
    K = np.array([[5.0, 0, 3.5], [0, 5.0, 2.5], [0, 0, 1]])
    images = [(rgb, 'rgb8', rgb), (rgb[..., ::-1], 'bgr8', rgb), (rgba, 'rgba8', rgb),
              (rgba[..., [2, 1, 0, 3]], 'bgra8', rgb), (mono, 'mono8', np.repeat(mono[..., None], 3, -1))]
    path = tmp_path / 'enc'
    with BagWriter(path, storage=storage) as bag:
        bag.write_camera_info('/cam/info', 1.0, K, 8, 6)  # only one camera_info, before all images
        for i, (arr, enc, _) in enumerate(images):
            stamp = 2.0 + i
            bag.write_image('/cam/image', stamp, arr, enc)
            bag.write_image('/cam/depth', stamp, mm, '16UC1')
            bag.write_odometry('/odom', stamp, np.eye(4), covariance=np.eye(6) * (i + 1),
                               child_frame_id='cam')
    frames = list(read_bag(path, image_topic='/cam/image', camera_info_topic='/cam/info',
                           depth_topic='/cam/depth',
                           pose_topic='/odom'))
    assert [f.encoding for f in frames] == [e for _, e, _ in images]
    for f, (_, _, expected) in zip(frames, images):
        np.testing.assert_array_equal(f.image, expected)
        np.testing.assert_array_equal(f.K, K)  # nearest-previous camera_info
        assert np.isnan(f.depth[0, 0])
        np.testing.assert_allclose(f.depth[1:], mm[1:].astype(np.float32) / 1000, rtol=1e-6)
        np.testing.assert_allclose(f.pose, np.eye(4))


def test_pose_and_odometry_messages(tmp_path):
    from rosbags.highlevel import AnyReader
    T = np.eye(4)
    T[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]])
    T[:3, 3] = [1, 2, 3]
    cov = np.arange(36, dtype=float).reshape(6, 6)
    path = tmp_path / 'poses'
    with BagWriter(path, storage='mcap') as bag:
        bag.write_pose('/pose', 5, T)  # int stamps are nanoseconds
        bag.write_odometry('/odom', 1.5, T, cov, frame_id='odom', child_frame_id='camera_optical_frame',
                           twist=[1, 2, 3, 4, 5, 6])
    with AnyReader([path]) as r:
        msgs = {c.topic: (r.deserialize(raw, c.msgtype), ts) for c, ts, raw in r.messages()}
    pose, ts = msgs['/pose']
    assert ts == 5 and pose.header.stamp.sec == 0 and pose.header.stamp.nanosec == 5
    assert pose.header.frame_id == 'odom'
    odom, ts = msgs['/odom']
    assert ts == 1_500_000_000 and odom.header.stamp.sec == 1 and odom.header.stamp.nanosec == 500_000_000
    assert odom.child_frame_id == 'camera_optical_frame'
    np.testing.assert_array_equal(odom.pose.covariance, cov.ravel())
    assert odom.twist.twist.angular.z == 6
    q = odom.pose.pose.orientation
    from dro_depth.data.poses import quaternion_to_matrix
    np.testing.assert_allclose(quaternion_to_matrix([q.x, q.y, q.z, q.w]), T[:3, :3], atol=1e-12)


def test_missing_topic_lists_available_topics(tmp_path, seq):
    path = write_sequence_bag(seq, tmp_path / 'bag', storage='mcap', depth_topic=None)
    with pytest.raises(BagError) as e:
        read_bag(path, image_topic='/camera/color/image_raw')
    msg = str(e.value)
    assert '/camera/color/image_raw' in msg and '/image (sensor_msgs/msg/Image)' in msg
    assert '/camera_info (sensor_msgs/msg/CameraInfo)' in msg
    assert '/pose (geometry_msgs/msg/PoseStamped)' in msg
    with pytest.raises(BagError, match='depth topic'):
        read_bag(path, depth_topic='/depth')
    with pytest.raises(BagError, match='must be one of'):
        read_bag(path, image_topic='/pose')


@pytest.mark.parametrize('storage', STORAGES)
def test_corrupt_and_missing_bags(tmp_path, seq, storage):
    with pytest.raises(BagError, match='does not exist'):
        list_topics(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(BagError, match='metadata.yaml'):
        list(read_bag(tmp_path / 'empty'))
    path = write_sequence_bag(seq, tmp_path / 'bag', storage=storage)
    data_file = next(p for p in Path(path).iterdir() if p.suffix in ('.db3', '.mcap'))
    raw = data_file.read_bytes()
    data_file.write_bytes(b'\x00garbage' * 64 + raw[len(raw) // 2:])
    with pytest.raises(BagError, match=str(path.name)):
        list(read_bag(path))
    assert issubclass(BagError, ValueError)


def test_writer_is_atomic(tmp_path):
    target = tmp_path / 'out'
    with pytest.raises(RuntimeError, match='boom'):
        with BagWriter(target) as bag:
            bag.write_depth('/depth', 1.0, np.ones((4, 4), np.float32))
            raise RuntimeError('boom')
    assert list(tmp_path.iterdir()) == []  # nothing half-written, no temporary directory left
    with BagWriter(target) as bag:
        bag.write_depth('/depth', 1.0, np.ones((4, 4), np.float32))
    with pytest.raises(FileExistsError):
        BagWriter(target).open()
    with BagWriter(target, overwrite=True, storage='mcap') as bag:
        bag.write_depth('/depth2', 2.0, np.ones((4, 4), np.float32))
    assert list_topics(target) == {'/depth2': 'sensor_msgs/msg/Image'}
    with pytest.raises(ValueError, match='storage'):
        BagWriter(tmp_path / 'x', storage='rosbag1')
    with BagWriter(tmp_path / 'y') as bag:
        with pytest.raises(ValueError, match='encoding'):
            bag.write_image('/img', 1.0, np.zeros((4, 4), np.float32), 'rgb8')


def test_compressed_images_are_decoded(tmp_path):
    import cv2
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[:, :4] = (255, 0, 0)
    ok, png = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    path = tmp_path / 'compressed'
    with BagWriter(path, storage='mcap') as bag:
        T = bag._store.types
        msg = T['sensor_msgs/msg/CompressedImage'](header=bag._header(7, 'cam'), format='png',
                                                   data=png.ravel())
        bag.write_message('/image/compressed', 'sensor_msgs/msg/CompressedImage', 7, msg)
    frames = list(read_bag(path, image_topic='/image/compressed', camera_info_topic=None, K=np.eye(3)))
    assert len(frames) == 1 and frames[0].stamp_ns == 7 and frames[0].frame_id == 'cam'
    np.testing.assert_array_equal(frames[0].image, rgb)


@pytest.mark.parametrize('stereo', [False, True])
def test_synth_cli_writes_readable_bags(tmp_path, stereo):
    from dro_depth.data.synth_cli import main
    out = tmp_path / 'synth'
    args = ['--out', str(out), '--frames', '3', '--height', '24', '--width', '32', '--storage', 'mcap']
    assert main(args + (['--stereo', '0.1'] if stereo else [])) == 0
    if not stereo:
        back = read_bag_sequence(out, depth_topic='/depth', pose_topic='/pose')
        assert len(back) == 3 and back.depths.shape == (3, 24, 32)
        return
    left = list(read_bag(out, image_topic='/left/image', camera_info_topic='/left/camera_info',
                         pose_topic='/left/pose'))
    right = list(read_bag(out, image_topic='/right/image', camera_info_topic='/right/camera_info',
                          pose_topic='/right/pose'))
    assert len(left) == len(right) == 3
    baseline = np.linalg.norm(right[0].pose[:3, 3] - left[0].pose[:3, 3])
    assert baseline == pytest.approx(0.1)
