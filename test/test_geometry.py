"""Pinhole camera, intrinsics validation, SE(3) and DRO pose-vector conventions."""
import math

import numpy as np
import pytest
import torch

from dro_depth.geometry import (IntrinsicsError, PinholeCamera, invert_se3, matrix_to_quaternion,
                                pose_vec_to_matrix, quaternion_to_matrix, rotation_angle, unproject_depth,
                                validate_intrinsics)

K = np.array([[500.0, 0.0, 319.5], [0.0, 500.0, 239.5], [0.0, 0.0, 1.0]])


def test_validate_rejects_bad_intrinsics():
    with pytest.raises(IntrinsicsError, match='NaN or inf'):
        validate_intrinsics(np.where(np.eye(3) > 0, np.nan, K))
    with pytest.raises(IntrinsicsError, match='positive'):
        validate_intrinsics(np.zeros((3, 3)))
    with pytest.raises(IntrinsicsError, match='3x3'):
        validate_intrinsics(np.eye(4))
    with pytest.raises(IntrinsicsError, match='mismatch'):
        validate_intrinsics(K, width=160, height=120)
    assert validate_intrinsics(list(K.ravel()), 640, 480).shape == (3, 3)


def test_resize_matches_pixel_centres():
    cam = PinholeCamera(K, 640, 480)
    small = cam.resized(320, 240)
    # The image centre stays the image centre, focal lengths halve.
    assert small.cx == pytest.approx(159.5) and small.cy == pytest.approx(119.5)
    assert small.fx == pytest.approx(250.0)
    # A 3D point projects to the same relative position in both images.
    p = np.array([0.3, -0.2, 2.0])
    u_big, u_small = cam.project(p), small.project(p)
    np.testing.assert_allclose((u_small + 0.5) * 2.0, u_big + 0.5, atol=1e-9)


def test_crop_and_unproject_roundtrip():
    cam = PinholeCamera(K, 640, 480).cropped(10, 20, 600, 400)
    depth = np.random.default_rng(0).uniform(1, 5, (400, 600))
    pts = cam.unproject(depth)
    uv = cam.project(pts)
    v, u = np.mgrid[0:400, 0:600]
    np.testing.assert_allclose(uv[..., 0], u, atol=1e-9)
    np.testing.assert_allclose(uv[..., 1], v, atol=1e-9)
    with pytest.raises(IntrinsicsError):
        cam.cropped(0, 0, 700, 10)
    with pytest.raises(IntrinsicsError):
        cam.unproject(depth[:10])


def test_from_camera_info_like():
    class Info:
        k = list(K.ravel())
        d = [0.1, 0, 0, 0, 0]
        width, height = 640, 480

    cam = PinholeCamera.from_camera_info(Info())
    assert cam.width == 640 and cam.D.shape == (5,)


def test_pose_vec_convention():
    # Rotation order Rx @ Ry @ Rz and translation first.
    v = torch.tensor([[1.0, 2.0, 3.0, 0.1, 0.2, 0.3]], dtype=torch.float64)
    T = pose_vec_to_matrix(v)[0].numpy()
    c, s = math.cos, math.sin
    Rx = np.array([[1, 0, 0], [0, c(0.1), -s(0.1)], [0, s(0.1), c(0.1)]])
    Ry = np.array([[c(0.2), 0, s(0.2)], [0, 1, 0], [-s(0.2), 0, c(0.2)]])
    Rz = np.array([[c(0.3), -s(0.3), 0], [s(0.3), c(0.3), 0], [0, 0, 1]])
    np.testing.assert_allclose(T[:3, :3], Rx @ Ry @ Rz, atol=1e-15)
    np.testing.assert_allclose(T[:3, 3], [1, 2, 3])
    assert isinstance(pose_vec_to_matrix(v[0].numpy()), np.ndarray)
    with pytest.raises(ValueError):
        pose_vec_to_matrix(torch.zeros(5))


def test_se3_and_quaternions():
    T = pose_vec_to_matrix(np.array([0.5, -0.1, 0.2, 0.4, -0.3, 1.2]))
    np.testing.assert_allclose(invert_se3(T) @ T, np.eye(4), atol=1e-12)
    q = matrix_to_quaternion(T[:3, :3])
    assert q[3] >= 0 and np.linalg.norm(q) == pytest.approx(1.0)
    np.testing.assert_allclose(quaternion_to_matrix(q), T[:3, :3], atol=1e-12)
    # 90 degrees about z in ROS (x, y, z, w) order.
    Rz = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(matrix_to_quaternion(Rz), [0, 0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-12)
    assert rotation_angle(Rz) == pytest.approx(math.pi / 2)


def test_unproject_depth_nan_stays_nan():
    d = np.full((4, 5), 2.0)
    d[1, 2] = np.nan
    p = unproject_depth(d, np.array([[2.0, 0, 2], [0, 2, 1.5], [0, 0, 1]]))
    assert np.isnan(p[1, 2]).all() and np.isfinite(p[0, 0]).all()
    np.testing.assert_allclose(p[..., 2][~np.isnan(d)], 2.0)


def test_quaternions_agree_with_kornia():
    import kornia
    rng = np.random.default_rng(1)
    vecs = np.concatenate([rng.normal(size=(50, 3)), rng.uniform(-3, 3, (50, 3))], axis=1)
    vecs[:5, 3:] = [[np.pi, 0, 0], [0, np.pi, 0], [0, 0, np.pi], [0, 0, 0], [np.pi / 2, 0, np.pi]]
    R = pose_vec_to_matrix(vecs)[:, :3, :3]
    q = matrix_to_quaternion(R)
    ref_wxyz = kornia.geometry.conversions.rotation_matrix_to_quaternion(torch.from_numpy(R)).numpy()
    ref = np.concatenate([ref_wxyz[:, 1:], ref_wxyz[:, :1]], axis=1)
    # q and -q are the same rotation.
    err = np.minimum(np.abs(q - ref).max(1), np.abs(q + ref).max(1))
    assert err.max() < 1e-6
    np.testing.assert_allclose(quaternion_to_matrix(q), R, atol=1e-12)
