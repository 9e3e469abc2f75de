"""Shared pytest fixtures.

ROS tests talk over loopback only (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) on a random ROS_DOMAIN_ID
chosen once per test run, so concurrent runs on one machine do not see each other. They skip cleanly
when rclpy is not installed.
"""
import os
import random

import pytest


@pytest.fixture(scope='session')
def ros_env():
    """The ROS environment of this test run (also exported to subprocesses); skips without rclpy."""
    pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')
    from dro_depth.ros.transport import ensure_fastdds_profile

    saved = dict(os.environ)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(1, 101))
    os.environ.pop('ROS_LOCALHOST_ONLY', None)
    ensure_fastdds_profile()
    yield dict(os.environ)
    os.environ.clear()
    os.environ.update(saved)
