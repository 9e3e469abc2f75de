"""Evaluation: depth and pose scores, the rosbag evaluation (`dro-depth eval`), held-out evaluations of the
bundled models and end-to-end runs without ROS.

May import the core (data, models, geometry, sfm, metric); never training, bench or ros.
"""
