"""Defects found in review of the input path (issue 13), each with a test that fails without its fix."""
import numpy as np
import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')

from sensor_msgs.msg import CameraInfo  # noqa: E402

from dro_depth.geometry import IntrinsicsError, PinholeCamera  # noqa: E402
from dro_depth.ros.conversions import camera_from_info, camera_info_for  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

# A calibrated camera: K describes the raw (distorted) image, P the rectified one; they differ.
K_RAW = np.array([[520.0, 0.0, 330.0], [0.0, 518.0, 250.0], [0.0, 0.0, 1.0]])
P_RECT = np.array([[480.0, 0.0, 310.0, 0.0], [0.0, 480.0, 236.0, 0.0], [0.0, 0.0, 1.0, 0.0]])


def _calibrated_info(binning=0, roi=None):
    info = CameraInfo(width=640, height=480, distortion_model='plumb_bob')
    info.k = K_RAW.ravel().tolist()
    info.p = P_RECT.ravel().tolist()
    info.r = np.eye(3).ravel().tolist()
    info.d = [-0.3, 0.1, 0.0, 0.0, 0.0]
    info.binning_x = info.binning_y = binning
    if roi:
        info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = roi
    return info


def test_rectified_input_uses_p_not_k():
    cam = PinholeCamera.from_camera_info(_calibrated_info())
    np.testing.assert_array_equal(cam.K, P_RECT[:, :3])
    raw = PinholeCamera.from_camera_info(_calibrated_info(), rectified=False)
    np.testing.assert_array_equal(raw.K, K_RAW)


def test_node_conversion_uses_p_with_binning_and_roi():
    cam = camera_from_info(_calibrated_info(), 640, 480)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (480.0, 480.0, 310.0, 236.0)
    binned = camera_from_info(_calibrated_info(binning=2), 320, 240)
    assert (binned.fx, binned.cx, binned.cy) == (240.0, 155.0, 118.0)
    crop = camera_from_info(_calibrated_info(roi=(100, 50, 400, 300)), 400, 300)
    assert (crop.fx, crop.cx, crop.cy) == (480.0, 210.0, 186.0)
    out = camera_info_for(_calibrated_info(binning=2), Header(frame_id='cam'), 160, 120)
    assert np.isclose(out.k[0], 120.0) and np.isclose(out.p[0], 120.0)


def test_all_zero_p_is_rejected_with_a_reason():
    info = _calibrated_info()
    info.p = [0.0] * 12
    with pytest.raises(IntrinsicsError, match='P is all zero'):
        camera_from_info(info, 640, 480)


def test_every_user_error_derives_from_the_package_base():
    from dro_depth.data.bags import BagError
    from dro_depth.data.folders import FolderError
    from dro_depth.data.image_encoding import ImageEncodingError
    from dro_depth.errors import ConfigError, DroDepthError
    from dro_depth.evaluation.scores import PoseMetricError
    from dro_depth.metric.depth_estimator import MetricInputError
    from dro_depth.metric.routing import RoutingError
    from dro_depth.metric.scale import ScaleError
    from dro_depth.models.checkpoints import CheckpointError
    from dro_depth.models.dro import DROInputError
    from dro_depth.ros.conversions import ImageConversionError, UnsupportedEncodingError
    from dro_depth.ros.params import ParameterError
    from dro_depth.sfm.estimator import EstimatorConfig, InputError
    classes = [BagError, FolderError, ImageEncodingError, ConfigError, PoseMetricError, MetricInputError,
               RoutingError, ScaleError, CheckpointError, DROInputError, ImageConversionError,
               UnsupportedEncodingError, ParameterError, InputError, IntrinsicsError]
    for cls in classes:
        assert issubclass(cls, DroDepthError), cls
    with pytest.raises(DroDepthError, match='iterations'):      # configuration errors too
        EstimatorConfig(iterations=-1).validate()


def test_float_images_decode_whatever_the_encoding_case():
    from dro_depth.ros.conversions import float_to_image, image_to_float
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    msg = float_to_image(values)
    msg.encoding = '32fc1'
    np.testing.assert_array_equal(image_to_float(msg), values)


@pytest.mark.parametrize('K,match', [
    ([[1e-30, 0, 320], [0, 1e-30, 240], [0, 0, 1]], 'implausible'),
    ([[1e300, 0, 320], [0, 1e300, 240], [0, 0, 1]], 'implausible'),
    ([[500, 1e6, 320], [0, 500, 240], [0, 0, 1]], 'skew'),
    ([[500, 0.5, 320], [0, 500, 240], [0, 0, 1]], 'skew'),
    ([[500, 0, 320], [0, 500, 240], [0, 1e-3, 1]], 'bottom row'),
    ([[500, 0, 320], [0, 500, 240], [0, 0, 2]], 'bottom row'),
    ([[500, 0, 320], [0, 20, 240], [0, 0, 1]], 'differ'),
])
def test_implausible_intrinsics_are_refused_with_a_reason(K, match):
    from dro_depth.geometry import validate_intrinsics
    with pytest.raises(IntrinsicsError, match=match):
        validate_intrinsics(K, 640, 480)


def test_plausible_extremes_are_accepted():
    from dro_depth.geometry import validate_intrinsics
    for f in (4.0, 600_000.0):              # ~178 degrees and ~0.06 degrees field of view
        validate_intrinsics([[f, 0, 320], [0, f, 240], [0, 0, 1]], 640, 480)


def test_point_cloud_has_no_infinite_points_when_it_claims_dense():
    from dro_depth.ros.conversions import depth_to_pointcloud2, pointcloud2_to_array
    K_tiny = np.array([[1e-40, 0, 1.5], [0, 1e-40, 1.5], [0, 0, 1]])    # bypasses validation on purpose
    cloud = depth_to_pointcloud2(np.full((4, 4), 2.0, np.float32), K_tiny)
    xyz, _ = pointcloud2_to_array(cloud)
    assert cloud.is_dense and np.all(np.isfinite(xyz))
