"""Which ROS timeline a message arrived in: a counter of the node clock's backward jumps.

A stamp is published at most once per timeline (:mod:`dro_depth.sfm.stamps`). A timeline ends only when ROS
time itself jumps backwards: with ``use_sim_time``, ``/clock`` going back (``ros2 bag play --loop --clock``),
or ROS time being switched on or off. tf2's buffer clears itself on exactly these jumps (any backwards jump,
and clock changes), so the node follows the same rule.

The jump callback runs on the executor thread, inside the ``/clock`` subscription, in order with the image
callbacks; each paired frame takes the timeline current when it was paired, and the worker starts a new
estimator timeline before the first frame of a newer one. Frames already waiting are processed in the
timeline they arrived in.
"""
from __future__ import annotations

import threading
from typing import Any

__all__ = ['Timeline']


class Timeline:
    """Counts backward jumps (and clock changes) of ``node``'s ROS clock.

    Args:
        node: the rclpy node whose clock (``use_sim_time`` aware) is watched.
    """

    def __init__(self, node: Any) -> None:
        from rclpy.clock import JumpThreshold
        from rclpy.duration import Duration

        self._lock = threading.Lock()
        self.index = 0
        self.last_jump_ns = 0
        threshold = JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1),
                                  on_clock_change=True)
        self._handle = node.get_clock().create_jump_callback(threshold, post_callback=self._on_jump)

    def _on_jump(self, jump: Any) -> None:
        delta = int(jump.delta.nanoseconds)
        if delta >= 0:                # ROS time switched on/off but not back: stamps cannot repeat
            return
        with self._lock:
            self.index += 1
            self.last_jump_ns = delta

    def current(self) -> int:
        with self._lock:
            return self.index

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.unregister()
