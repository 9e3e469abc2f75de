"""Subscribing to the outputs of ``sfm_node`` (or ``mono_depth_node``), for the demo, benchmark and tests.

:class:`OutputCollector` keeps the newest messages of each output (bounded) with their arrival time on
the steady clock, and can write them to a ROS 2 bag with ``rosbags`` (no ros2 CLI needed).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path as PathMsg
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from dro_depth.ros.conversions import stamp_to_ns
from dro_depth.ros.qos import output_qos

__all__ = ['OUTPUT_TOPICS', 'Received', 'OutputCollector']

# relative topic name -> message type (the node's outputs)
OUTPUT_TOPICS: Dict[str, type] = {
    'depth': Image,
    'depth/camera_info': CameraInfo,
    'confidence': Image,
    'pose': PoseStamped,
    'odom': Odometry,
    'path': PathMsg,
    'points': PointCloud2,
    'metric_depth': Image,
    'metric_depth/camera_info': CameraInfo,
    'relative_depth': Image,
    '/diagnostics': DiagnosticArray,
}
# outputs that exist only with some settings (metric.enabled) or only on mono_depth_node (relative_depth)
OPTIONAL_TOPICS = frozenset({'metric_depth', 'metric_depth/camera_info', 'relative_depth'})


@dataclass
class Received:
    """A message and when it arrived (``time.monotonic()``)."""

    msg: Any
    t: float


class OutputCollector:
    """Subscribes ``node`` to the node's outputs and keeps what arrives.

    Args:
        node: the rclpy node to own the subscriptions (spun by the caller's executor).
        namespace: prefix of the relative output topics (e.g. ``/robot1``), '' for none.
        topics: which outputs (default: all of :data:`OUTPUT_TOPICS`).
        keep: messages kept per topic.
    """

    def __init__(self, node: Any, namespace: str = '', topics: Optional[List[str]] = None,
                 keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.messages: Dict[str, Deque[Received]] = {}
        self.counts: Dict[str, int] = {}
        self.subscriptions = {}
        ns = namespace.rstrip('/')
        for name in topics or list(OUTPUT_TOPICS):
            full = name if name.startswith('/') else (f'{ns}/{name}' if ns else name)
            self.messages[name] = deque(maxlen=keep)
            self.counts[name] = 0
            self.subscriptions[name] = node.create_subscription(
                OUTPUT_TOPICS[name], full, lambda msg, name=name: self._add(name, msg), output_qos(10))

    def _add(self, name: str, msg: Any) -> None:
        with self._cond:
            self.messages[name].append(Received(msg, time.monotonic()))
            self.counts[name] += 1
            self._cond.notify_all()

    def count(self, name: str) -> int:
        with self._lock:
            return self.counts[name]

    def get(self, name: str) -> List[Received]:
        with self._lock:
            return list(self.messages[name])

    def latest(self, name: str) -> Optional[Any]:
        with self._lock:
            return self.messages[name][-1].msg if self.messages[name] else None

    def by_stamp(self, name: str) -> Dict[int, Received]:
        """Messages of ``name`` keyed by header stamp (integer ns)."""
        with self._lock:
            return {stamp_to_ns(r.msg.header.stamp): r for r in self.messages[name]}

    def wait(self, predicate, timeout: float) -> bool:
        """Wait (bounded) until ``predicate(self)`` is true; re-checked whenever a message arrives."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._cond:
                self._cond.wait(min(remaining, 0.1))

    def publishers_ready(self, node: Any, names: Optional[List[str]] = None) -> bool:
        """Whether every output topic in ``names`` has a publisher (the node is up)."""
        names = names or [n for n in self.subscriptions if not n.startswith('/') and n not in OPTIONAL_TOPICS]
        return all(self.subscriptions[n].get_publisher_count() > 0 for n in names)

    def write_bag(self, path: str | Path, names: Optional[List[str]] = None, storage: str = 'mcap') -> Path:
        """Write the kept messages of ``names`` to a ROS 2 bag (``rosbags`` writer), stamped by header time.

        Returns:
            the bag directory.
        """
        from rclpy.serialization import serialize_message
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        path = Path(path)
        typestore = get_typestore(Stores.LATEST)
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        names = names or [n for n in self.messages if self.messages[n]]
        with Writer(path, version=9, storage_plugin=plugin) as writer:
            conns = {}
            for name in names:
                msg_type = OUTPUT_TOPICS[name]
                type_name = _type_name(msg_type)
                topic = name if name.startswith('/') else f'/{name}'
                conns[name] = writer.add_connection(topic, type_name, typestore=typestore)
            items: List[Tuple[int, str, Any]] = []
            for name in names:
                for r in self.get(name):
                    items.append((stamp_to_ns(r.msg.header.stamp), name, r.msg))
            items.sort(key=lambda item: item[0])
            for t_ns, name, msg in items:
                writer.write(conns[name], t_ns, serialize_message(msg))
        return path


def _type_name(msg_type: type) -> str:
    module = msg_type.__module__.split('.')      # e.g. sensor_msgs.msg._image
    return f'{module[0]}/msg/{msg_type.__name__}'

