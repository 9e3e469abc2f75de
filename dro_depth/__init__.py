"""dro_depth: monocular dense depth, camera pose and odometry for ROS 2.

The core (geometry, models, estimator, losses, data, evaluation) never imports rclpy; the ROS skin
lives in :mod:`dro_depth.ros`.
"""

__version__ = '0.1.0'
