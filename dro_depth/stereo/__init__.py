"""Stereo depth: rectified left/right images + calibration -> disparity and metric depth (no ROS)."""
from .calibration import StereoCalibration, StereoCalibrationError
from .estimator import StereoConfig, StereoEstimator, StereoInputError, StereoResult, default_stereo_weights

__all__ = ['StereoCalibration', 'StereoCalibrationError', 'StereoConfig', 'StereoEstimator',
           'StereoInputError', 'StereoResult', 'default_stereo_weights']
