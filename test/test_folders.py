"""Plain-folder datasets: write/read round trip, alternative layouts, errors."""
import cv2
import numpy as np
import pytest

from dro_depth.data.folders import FolderError, read_folder, read_folder_sequence, write_folder
from dro_depth.data.poses import matrix_to_quaternion, quaternion_to_matrix, read_tum
from dro_depth.data.synthetic import generate_sequence


@pytest.fixture(scope='module')
def seq():
    return generate_sequence('outdoor', seed=1, n_frames=3, height=24, width=32)


def test_round_trip_npy(tmp_path, seq):
    path = write_folder(seq, tmp_path / 'seq')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['seq']
    back = read_folder_sequence(path)
    np.testing.assert_array_equal(back.images, seq.images)
    np.testing.assert_array_equal(back.depths, seq.depths)
    np.testing.assert_allclose(back.poses, seq.poses, atol=1e-8)
    np.testing.assert_allclose(back.stamps, seq.stamps, atol=1e-6)
    np.testing.assert_allclose(back.K, seq.K, rtol=1e-9)
    stamps, poses = read_tum(path / 'poses.txt')
    assert len(stamps) == 3 and poses.shape == (3, 4, 4)
    with pytest.raises(FileExistsError):
        write_folder(seq, path)


def test_round_trip_png_depth(tmp_path, seq):
    path = write_folder(seq, tmp_path / 'seq', depth_format='png')
    raw = cv2.imread(str(path / 'depth' / '000000.png'), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    back = read_folder_sequence(path)
    np.testing.assert_array_equal(np.isnan(back.depths), np.isnan(seq.depths) | (seq.depths > 65.535))
    ok = ~np.isnan(back.depths)
    np.testing.assert_allclose(back.depths[ok], seq.depths[ok], atol=5.1e-4)


def test_plain_image_folder_with_fx_fy_cx_cy(tmp_path):
    img = np.zeros((10, 12, 3), np.uint8)
    img[..., 0] = 200  # red
    for name in ('frame10.png', 'frame2.png', 'frame1.png'):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    (tmp_path / 'intrinsics.txt').write_text('100 101 5.5 4.5\n')
    frames = list(read_folder(tmp_path, fps=10))
    assert [f.index for f in frames] == [0, 1, 2]
    np.testing.assert_allclose([f.stamp for f in frames], [0, 0.1, 0.2])
    assert frames[0].image[0, 0].tolist() == [200, 0, 0]
    np.testing.assert_allclose(frames[0].K, [[100, 0, 5.5], [0, 101, 4.5], [0, 0, 1]])
    assert frames[0].depth is None and frames[0].pose is None


def test_ros_calibration_yaml(tmp_path):
    cv2.imwrite(str(tmp_path / '1305031102.175304.png'), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(tmp_path / '1305031102.211214.png'), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / 'camera_info.yaml').write_text(
        'camera_matrix:\n  rows: 3\n  cols: 3\n  data: [1, 0, 2, 0, 1, 2, 0, 0, 1]\n')
    frames = list(read_folder(tmp_path))
    np.testing.assert_allclose([f.stamp for f in frames], [1305031102.175304, 1305031102.211214])
    assert frames[0].K[0, 2] == 2


def test_folder_errors(tmp_path, seq):
    with pytest.raises(FolderError, match='does not exist'):
        read_folder(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FolderError, match='no images'):
        read_folder(tmp_path / 'empty')
    cv2.imwrite(str(tmp_path / 'empty' / 'a.png'), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FolderError, match='intrinsics'):
        read_folder(tmp_path / 'empty')
    path = write_folder(seq, tmp_path / 'seq')
    (path / 'timestamps.txt').write_text('1.0\n2.0\n')
    with pytest.raises(FolderError, match='2 stamps for 3 images'):
        read_folder(path)


def test_quaternion_round_trip():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(50, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 3] < 0] *= -1
    R = quaternion_to_matrix(q)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(matrix_to_quaternion(R), q, atol=1e-12)
    # 180 degree rotations (trace = -1) take the other branches
    for R180 in (np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1])):
        np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(R180)), R180, atol=1e-12)
