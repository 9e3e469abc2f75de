"""Frame maths of the ROS outputs: estimator world (first optical frame) -> odom / base (REP 103/105)."""
import math

import numpy as np
import pytest

from dro_depth.geometry import invert_se3
from dro_depth.ros.frames import R_BASE_OPTICAL, T_BASE_OPTICAL, odom_poses, rotate_covariance, so3_log, \
    twist_from_poses


def _rot(axis, angle):
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * Kx + (1 - math.cos(angle)) * Kx @ Kx


def _T(R=np.eye(3), t=(0, 0, 0)):
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def test_optical_to_body_axes():
    # optical z (forward) -> base x, optical x (right) -> base -y, optical y (down) -> base -z
    np.testing.assert_array_equal(R_BASE_OPTICAL @ [0, 0, 1], [1, 0, 0])
    np.testing.assert_array_equal(R_BASE_OPTICAL @ [1, 0, 0], [0, -1, 0])
    np.testing.assert_array_equal(R_BASE_OPTICAL @ [0, 1, 0], [0, 0, -1])
    assert np.isclose(np.linalg.det(R_BASE_OPTICAL), 1.0)


def test_odom_coincides_with_base_at_the_first_frame():
    T_odom_base, T_odom_cam = odom_poses(np.eye(4))
    np.testing.assert_allclose(T_odom_base, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(T_odom_cam, T_BASE_OPTICAL, atol=1e-12)


def test_camera_moving_forward_moves_base_forward_along_x():
    T_odom_base, T_odom_cam = odom_poses(_T(t=(0, 0, 2.5)))
    np.testing.assert_allclose(T_odom_base[:3, 3], [2.5, 0, 0], atol=1e-12)
    np.testing.assert_allclose(T_odom_base[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(T_odom_cam[:3, 3], [2.5, 0, 0], atol=1e-12)


def test_camera_turning_left_is_a_positive_yaw():
    # turning left = rotating about the camera's up axis = optical -y
    T_odom_base, _ = odom_poses(_T(_rot([0, -1, 0], 0.3)))
    np.testing.assert_allclose(so3_log(T_odom_base[:3, :3]), [0, 0, 0.3], atol=1e-12)


def test_mounting_offset_from_tf_is_respected():
    # camera 0.2 m ahead and 0.5 m above base, looking forward
    T_base_cam = _T(R_BASE_OPTICAL, (0.2, 0.0, 0.5))
    T_odom_base, T_odom_cam = odom_poses(np.eye(4), T_base_cam)
    np.testing.assert_allclose(T_odom_base, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(T_odom_cam, T_base_cam, atol=1e-12)
    # yaw of 90 deg in place about the camera: the base swings around the camera's vertical axis
    T_odom_base, T_odom_cam = odom_poses(_T(_rot([0, -1, 0], math.pi / 2)), T_base_cam)
    np.testing.assert_allclose(T_odom_cam[:3, 3], [0.2, 0.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(T_odom_base @ T_base_cam, T_odom_cam, atol=1e-12)
    np.testing.assert_allclose(T_odom_base[:3, 3], [0.2, -0.2, 0.0], atol=1e-12)


def test_covariance_is_rotated_into_odom_axes():
    cov = np.diag([1.0, 2.0, 3.0, 0.1, 0.2, 0.3])     # optical x, y, z, rot x, rot y, rot z
    out = rotate_covariance(cov, R_BASE_OPTICAL)
    np.testing.assert_allclose(np.diag(out), [3.0, 1.0, 2.0, 0.3, 0.1, 0.2])
    np.testing.assert_allclose(out, out.T)


@pytest.mark.parametrize('angle', [0.0, 1e-9, 0.5, 3.0, math.pi - 1e-6, math.pi])
def test_so3_log_inverts_rotation(angle):
    axis = np.array([0.3, -0.5, 0.8])
    axis /= np.linalg.norm(axis)
    w = so3_log(_rot(axis, angle))
    assert np.isclose(np.linalg.norm(w), angle, atol=1e-6)
    if angle > 1e-6:
        assert np.isclose(abs(w @ axis) / np.linalg.norm(w), 1.0, atol=1e-6)


def test_twist_from_finite_differences_is_in_the_child_frame():
    T0 = _T(_rot([0, 0, 1], math.pi / 2), (1.0, 1.0, 0.0))     # facing +y in odom
    step = _T(_rot([0, 0, 1], 0.1), (0.5, 0.0, 0.0))            # 0.5 m forward + 0.1 rad yaw in base
    T1 = T0 @ step
    cov0 = np.diag([0.01] * 6)
    cov1 = np.diag([0.03, 0.01, 0.01, 0.01, 0.01, 0.02])
    twist, cov = twist_from_poses(T0, T1, 0.25, cov0, cov1)
    np.testing.assert_allclose(twist, [2.0, 0, 0, 0, 0, 0.4], atol=1e-9)
    assert np.all(np.isfinite(cov)) and np.all(np.linalg.eigvalsh(cov) > 0)
    # the odom-x variance growth (0.02) lies mostly along the child's y axis at heading pi/2 + 0.1
    assert np.isclose(cov[1, 1], 0.02 * math.cos(0.1) ** 2 / 0.0625 + 1e-6, rtol=1e-9)
    assert np.isclose(cov[0, 0], 0.02 * math.sin(0.1) ** 2 / 0.0625 + 1e-6, rtol=1e-9)
    assert np.isclose(cov[5, 5], 0.01 / 0.0625 + 1e-6, rtol=1e-3)
    with pytest.raises(ValueError, match='positive'):
        twist_from_poses(T0, T1, 0.0, cov0, cov1)


def test_invert_consistency():
    T = _T(_rot([1, 2, 3], 0.7), (1, 2, 3))
    T_odom_base, T_odom_cam = odom_poses(T)
    np.testing.assert_allclose(invert_se3(T_odom_base) @ T_odom_cam, T_BASE_OPTICAL, atol=1e-12)
