"""The ROS 2 skins: nodes that only convert messages, manage parameters, QoS, threads and publishing around
the pure core (``sfm_node``: :mod:`.sfm_node`; its helpers beside it). The demo/test harness lives in
:mod:`.testing`. The only subpackage that imports rclpy.
"""
