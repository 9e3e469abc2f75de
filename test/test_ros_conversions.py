"""Message <-> array conversions of the ROS skin (no ROS graph needed, only the message packages)."""
import struct
import sys

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')

from sensor_msgs.msg import CameraInfo, Image, PointField  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from dro_depth.geometry import IntrinsicsError, PinholeCamera  # noqa: E402
from dro_depth.ros.conversions import (  # noqa: E402
    COLOR_ENCODINGS, ImageConversionError, UnsupportedEncodingError, camera_from_info, camera_info_for,
    depth_to_pointcloud2, float_to_image, image_to_float, image_to_rgb, make_camera_info, matrix_to_pose,
    ns_to_stamp, pointcloud2_to_array, pose_to_matrix, rgb_to_image, stamp_to_ns)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (7, 11, 3), dtype=np.uint8)
K = np.array([[50.0, 0, 5.5], [0, 50.0, 3.5], [0, 0, 1]])


def _raw_image(encoding, pixels, step):
    """A message built byte by byte, independent of rgb_to_image."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    data = b''.join(row.tobytes() + b'\x07' * (step - row.size) for row in rows)
    msg = Image(height=h, width=w, encoding=encoding, step=step)
    msg.data = data
    return msg


@pytest.mark.parametrize('encoding', sorted(COLOR_ENCODINGS))
@pytest.mark.parametrize('padding', [0, 5])
def test_every_encoding_round_trips_with_step_padding(encoding, padding):
    msg = rgb_to_image(RGB, encoding, row_padding=padding)
    channels = COLOR_ENCODINGS[encoding]
    assert msg.step == RGB.shape[1] * channels + padding
    assert len(msg.data) == msg.step * RGB.shape[0]
    out = image_to_rgb(msg)
    if encoding == 'mono8':
        grey = np.round(RGB.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
        np.testing.assert_array_equal(out, grey)
    else:
        np.testing.assert_array_equal(out, RGB)
    assert out.flags['C_CONTIGUOUS']
    before = out.copy()
    for i in range(min(len(msg.data), 64)):      # the result must not alias the message buffer
        msg.data[i] = 255 - msg.data[i]
    np.testing.assert_array_equal(out, before)


@pytest.mark.parametrize('encoding,pixels', [
    ('bgr8', RGB[:, :, ::-1]),
    ('rgba8', np.concatenate([RGB, np.zeros(RGB.shape[:2] + (1,), np.uint8)], axis=2)),
    ('bgra8', np.concatenate([RGB[:, :, ::-1], np.full(RGB.shape[:2] + (1,), 9, np.uint8)], axis=2)),
])
def test_channel_order_from_raw_bytes(encoding, pixels):
    msg = _raw_image(encoding, np.ascontiguousarray(pixels), step=pixels.shape[1] * pixels.shape[2] + 3)
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


def test_mono8_is_returned_as_a_2d_array():
    grey = RNG.integers(0, 256, (6, 9), dtype=np.uint8)
    out = image_to_rgb(_raw_image('mono8', grey, step=12))
    assert out.shape == (6, 9)
    np.testing.assert_array_equal(out, grey)


def test_unsupported_encoding_names_it():
    msg = Image(height=2, width=2, encoding='16UC1', step=4)
    msg.data = bytes(8)
    with pytest.raises(UnsupportedEncodingError, match='16UC1'):
        image_to_rgb(msg)


@pytest.mark.parametrize('step,size,match', [(10, 3 * 10 * 4, 'smaller than'), (33, 33 * 3 + 29, 'needs')])
def test_inconsistent_step_or_data_is_rejected(step, size, match):
    msg = Image(height=4, width=10, encoding='rgb8', step=step)
    msg.data = bytes(size)
    with pytest.raises(ImageConversionError, match=match):
        image_to_rgb(msg)


def test_depth_32fc1_round_trip_keeps_nan():
    depth = RNG.uniform(0.5, 20, (5, 8)).astype(np.float32)
    depth[1, 2] = np.nan
    depth[4, 7] = np.nan
    header = Header(frame_id='cam_optical', stamp=ns_to_stamp(1_000_000_000_123))
    msg = float_to_image(depth, header)
    assert (msg.encoding, msg.height, msg.width, msg.step) == ('32FC1', 5, 8, 32)
    assert msg.is_bigendian == (sys.byteorder == 'big')
    assert msg.header.frame_id == 'cam_optical' and stamp_to_ns(msg.header.stamp) == 1_000_000_000_123
    out = image_to_float(msg)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(depth))
    np.testing.assert_array_equal(out[~np.isnan(out)], depth[~np.isnan(depth)])


def test_big_endian_padded_32fc1_is_decoded():
    values = np.array([[1.5, np.nan], [-2.0, 3.25]], np.float32)
    data = b''.join(struct.pack('>ff', *row) + b'\0\0\0\0' for row in values)
    msg = Image(height=2, width=2, encoding='32FC1', is_bigendian=True, step=12)
    msg.data = data
    out = image_to_float(msg)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(values))
    assert out[0, 0] == 1.5 and out[1, 0] == -2.0 and out[1, 1] == 3.25


def test_pointcloud_layout_skips_nan_and_backprojects():
    depth = np.full((4, 6), 2.0, np.float32)
    depth[0, 0] = np.nan
    depth[3, 5] = -1.0
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[2, 3] = (255, 10, 1)
    K4 = np.array([[10.0, 0, 3.0], [0, 20.0, 2.0], [0, 0, 1]])
    msg = depth_to_pointcloud2(depth, K4, rgb, Header(frame_id='cam'), decimation=1)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ('x', 0, PointField.FLOAT32, 1), ('y', 4, PointField.FLOAT32, 1), ('z', 8, PointField.FLOAT32, 1),
        ('rgb', 12, PointField.FLOAT32, 1)]
    assert msg.point_step == 16 and msg.height == 1 and msg.width == 22 and msg.is_dense
    assert msg.row_step == 16 * 22 and len(msg.data) == 16 * 22
    xyz, colours = pointcloud2_to_array(msg)
    assert np.all(xyz[:, 2] == 2.0)
    # pixel (u=3, v=2) is at the principal point -> x = y = 0, and carries the red colour
    i = int(np.flatnonzero((xyz[:, 0] == 0) & (xyz[:, 1] == 0))[0])
    np.testing.assert_array_equal(colours[i], [255, 10, 1])
    # RViz reads rgb as the float32 whose bits are 0x00RRGGBB
    raw = np.frombuffer(bytes(msg.data), np.uint32).reshape(-1, 4)
    assert raw[i, 3] == 0xFF0A01
    # pixel (u=5, v=0): x = (5-3)/10*2, y = (0-2)/20*2
    j = int(np.flatnonzero(np.isclose(xyz[:, 0], 0.4) & np.isclose(xyz[:, 1], -0.2))[0])
    assert np.isfinite(xyz[j]).all()


def test_pointcloud_decimation():
    depth = np.ones((8, 10), np.float32)
    msg = depth_to_pointcloud2(depth, K, None, decimation=3)
    assert msg.width == len(range(0, 8, 3)) * len(range(0, 10, 3))
    _, colours = pointcloud2_to_array(msg)
    assert np.all(colours == 255)
    with pytest.raises(ValueError):
        depth_to_pointcloud2(depth, K, decimation=0)


def test_pose_round_trip_and_known_quaternion():
    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]      # +90 deg about z
    T[:3, 3] = [1.0, -2.0, 0.5]
    pose = matrix_to_pose(T)
    q = [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]
    np.testing.assert_allclose(q, [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-9)
    assert (pose.position.x, pose.position.y, pose.position.z) == (1.0, -2.0, 0.5)
    for _ in range(20):
        a = RNG.normal(size=3)
        angle = np.linalg.norm(a)
        k = a / angle
        Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        R = np.eye(3) + np.sin(angle) * Kx + (1 - np.cos(angle)) * Kx @ Kx
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = RNG.normal(size=3)
        np.testing.assert_allclose(pose_to_matrix(matrix_to_pose(T)), T, atol=1e-9)


def test_quaternions_match_the_axis_angle_closed_form():
    """Checked against q = (k sin(t/2), cos(t/2)), independent of the Shepperd implementation."""
    from dro_depth.geometry import quaternion_to_matrix
    from dro_depth.ros.conversions import rotation_to_quaternion
    cases = [(np.array([1.0, 0, 0]), np.pi), (np.array([0, 1.0, 0]), np.pi), (np.array([0, 0, 1.0]), np.pi),
             (np.array([0, 0, 1.0]), 0.0)]
    for _ in range(200):
        a = RNG.normal(size=3)
        cases.append((a / np.linalg.norm(a), RNG.uniform(0, np.pi)))
    for k, angle in cases:
        Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        R = np.eye(3) + np.sin(angle) * Kx + (1 - np.cos(angle)) * Kx @ Kx       # Rodrigues
        expected = np.append(k * np.sin(angle / 2), np.cos(angle / 2))
        q = rotation_to_quaternion(R)
        assert np.isclose(np.linalg.norm(q), 1.0) and q[3] >= 0
        assert min(np.abs(q - expected).max(), np.abs(q + expected).max()) < 1e-6  # sign free at w = 0
        np.testing.assert_allclose(quaternion_to_matrix(q), R, atol=1e-9)


def test_stamps_are_exact():
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_700_000_123_456_789_012):
        assert stamp_to_ns(ns_to_stamp(ns)) == ns


def _info(width=640, height=480, binning=0, roi=None):
    K640 = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
    info = make_camera_info(PinholeCamera(K640, width, height))
    info.binning_x = info.binning_y = binning
    if roi:
        info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = roi
    return info


def test_camera_from_info_applies_binning_and_roi():
    cam = camera_from_info(_info(binning=2), 320, 240)
    assert (cam.width, cam.height) == (320, 240) and cam.fx == 250.0
    cam = camera_from_info(_info(roi=(220, 190, 200, 100)), 200, 100)
    assert (cam.width, cam.height, cam.cx, cam.cy) == (200, 100, 99.5, 49.5)
    with pytest.raises(IntrinsicsError, match='640x480'):
        camera_from_info(_info(), 320, 240)
    zero = CameraInfo(width=64, height=48)
    with pytest.raises(IntrinsicsError, match='focal'):
        camera_from_info(zero, 64, 48)


def test_depth_camera_info_is_restamped_and_matches_size():
    info = _info()
    info.header.frame_id = 'old'
    header = Header(frame_id='cam_optical', stamp=ns_to_stamp(42))
    same = camera_info_for(info, header, 640, 480)
    assert same.header.frame_id == 'cam_optical' and stamp_to_ns(same.header.stamp) == 42
    assert list(same.k) == list(info.k) and list(same.p) == list(info.p)
    binned = camera_info_for(_info(binning=2), header, 320, 240)
    assert (binned.width, binned.height) == (320, 240) and binned.binning_x == 0
    assert binned.k[0] == 250.0 and binned.p[0] == 250.0
