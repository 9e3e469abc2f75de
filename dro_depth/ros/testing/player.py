"""Publishing camera streams: arrays as a live camera, and ROS 2 bags (with /clock) without ``ros2 bag``.

Used by the demo, the benchmark and the tests, and useful on machines with only the PyPI ROS runtime:

    streamer = CameraStreamer(node)                   # publishes image + camera_info
    streamer.publish(rgb, K, stamp_ns, 'camera_optical_frame')

    play_bag(node, 'recording/', clock=True)          # like `ros2 bag play --clock`
"""
from __future__ import annotations

import importlib
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from dro_depth.geometry import PinholeCamera
from dro_depth.ros.conversions import make_camera_info, ns_to_stamp, rgb_to_image
from dro_depth.ros.qos import input_qos, output_qos

__all__ = ['CameraStreamer', 'camera_messages', 'message_class', 'play_bag', 'wait_for',
           'wait_for_subscribers']

logger = logging.getLogger(__name__)


def wait_for(predicate: Callable[[], bool], timeout: float, poll: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def wait_for_subscribers(publishers: Any, timeout: float, count: int = 1) -> bool:
    """Wait until every publisher has at least ``count`` matched subscriptions (discovery done)."""
    pubs = list(publishers) if isinstance(publishers, (list, tuple)) else [publishers]
    return wait_for(lambda: all(p.get_subscription_count() >= count for p in pubs), timeout)


def camera_messages(rgb: np.ndarray, K: np.ndarray, stamp_ns: int, frame_id: str = 'camera_optical_frame',
                    encoding: str = 'rgb8', row_padding: int = 0) -> Tuple[Image, CameraInfo]:
    """An image and its CameraInfo with the same header (stamp + frame)."""
    header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)
    image = rgb_to_image(rgb, encoding, header, row_padding)
    camera = PinholeCamera(np.asarray(K, np.float64), int(image.width), int(image.height))
    info = make_camera_info(camera, header)
    return image, info


class CameraStreamer:
    """Publishes image + camera_info pairs like a camera driver.

    Args:
        node: the rclpy node that owns the publishers.
        image_topic, info_topic: topic names.
        reliability: 'reliable' (default: nothing lost on loopback) or 'best_effort'.
    """

    def __init__(self, node: Any, image_topic: str = 'image', info_topic: str = 'camera_info',
                 reliability: str = 'reliable', depth: int = 5) -> None:
        qos = input_qos(reliability, depth)
        self.image_pub = node.create_publisher(Image, image_topic, qos)
        self.info_pub = node.create_publisher(CameraInfo, info_topic, qos)

    def wait_for_subscribers(self, timeout: float = 10.0) -> bool:
        return wait_for_subscribers([self.image_pub, self.info_pub], timeout)

    def publish(self, rgb: np.ndarray, K: np.ndarray, stamp_ns: int, frame_id: str = 'camera_optical_frame',
                encoding: str = 'rgb8', with_info: bool = True, row_padding: int = 0) -> Header:
        """Publish one frame (CameraInfo first, as drivers do); returns the header used."""
        image, info = camera_messages(rgb, K, stamp_ns, frame_id, encoding, row_padding)
        if with_info:
            self.info_pub.publish(info)
        self.image_pub.publish(image)
        return image.header


def message_class(type_name: str) -> type:
    """The rclpy message class of a ROS 2 type name such as ``sensor_msgs/msg/Image``."""
    parts = type_name.split('/')
    if len(parts) == 2:
        parts = [parts[0], 'msg', parts[1]]
    if len(parts) != 3:
        raise ValueError(f'not a ROS 2 message type name: {type_name!r}')
    module = importlib.import_module(f'{parts[0]}.{parts[1]}')
    return getattr(module, parts[2])


def play_bag(node: Any, path: str | Path, rate: float = 1.0, clock: bool = True,
             topics: Optional[Mapping[str, str]] = None, stop: Optional[threading.Event] = None,
             wait_for_subs: float = 10.0, ready: Optional[Callable[[], bool]] = None) -> Dict[str, int]:
    """Replay a ROS 2 bag (sqlite3 or mcap, read with ``rosbags``) through rclpy publishers.

    Messages are published at their recorded times (scaled by ``rate``); with ``clock`` the bag time is
    published on ``/clock`` before each message, as ``ros2 bag play --clock`` does, so a node with
    ``use_sim_time`` sees the recorded time.

    Args:
        node: rclpy node that owns the publishers.
        path: bag directory (or .mcap file).
        rate: playback speed factor.
        clock: publish ``/clock``.
        topics: bag topic -> published topic (default: the same names); topics not in the map are skipped
            when a map is given.
        stop: set to end early.
        wait_for_subs: seconds to wait for the publishers (and /clock) to be matched before playing.
        ready: optional check that the receiver is ready (e.g. its clock shows the bag time). Until it is
            true (bounded by ``wait_for_subs``) the bag's start time is published on /clock every 50 ms.
            Discovery completes on the subscriber's side a little after the publisher sees the match, so
            without such a handshake the first messages can be lost (like ``ros2 bag play`` without
            ``--delay``).

    Returns:
        Published message count per topic. The publishers live on with ``node``.
    """
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    counts: Dict[str, int] = {}
    with Reader(Path(path)) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        pubs, types = {}, {}
        for c in conns:
            msg_type = message_class(c.msgtype)
            name = topics[c.topic] if topics else c.topic
            pubs[c.id] = node.create_publisher(msg_type, name, output_qos(10))
            types[c.id] = msg_type
            counts[name] = 0
        clock_pub = node.create_publisher(Clock, '/clock', output_qos(10)) if clock else None
        # Discovery: every data topic, and /clock (a node with use_sim_time subscribes to it), bounded.
        wait_for_subscribers(list(pubs.values()) + ([clock_pub] if clock_pub is not None else []),
                             wait_for_subs)
        if ready is not None:
            first_ns = reader.start_time
            deadline = time.monotonic() + wait_for_subs
            while not ready() and time.monotonic() < deadline:
                if clock_pub is not None:
                    clock_pub.publish(Clock(clock=ns_to_stamp(first_ns)))
                time.sleep(0.05)
        start_wall: Optional[float] = None
        start_bag: Optional[int] = None
        for conn, bag_ns, raw in reader.messages(connections=conns):
            if stop is not None and stop.is_set():
                break
            if start_wall is None:
                start_wall, start_bag = time.monotonic(), bag_ns
            due = start_wall + (bag_ns - start_bag) * 1e-9 / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if clock_pub is not None:
                clock_pub.publish(Clock(clock=ns_to_stamp(bag_ns)))
            msg = deserialize_message(bytes(raw), types[conn.id])
            pubs[conn.id].publish(msg)
            name = topics[conn.topic] if topics else conn.topic
            counts[name] += 1
        # The publishers stay until the node is destroyed: destroying a writer at once can discard its
        # last samples before a subscriber took them (observed: the last frame of a bag went missing).
    return counts
