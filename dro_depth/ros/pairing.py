"""Pair each image with the CameraInfo of the same stamp (as image_pipeline does).

:class:`CameraPairing` subscribes to ``image`` and ``camera_info`` and calls back with (image, info):

* ``exact`` (default): same ``header.stamp``. With ``message_filters`` (every ROS 2 distro) a
  ``TimeSynchronizer`` does it; without it (PyPI runtime) :class:`ExactTimePairer`, a small equivalent
  with bounded buffers. An image whose CameraInfo never comes is not dropped silently: once
  ``queue_size`` newer images wait, it is evicted and counted as ``unpaired`` (with the reason), and the
  images still waiting are reported as ``pending_unpaired``.
* ``latest``: the newest CameraInfo of a periodic publisher whose stamps do not match the images'.
* ``latched``: a camera that publishes CameraInfo once with transient-local durability (latched):
  subscribed with reliable + transient local QoS, so the message sent before this node started still
  arrives. (An exact-stamp pairing cannot work for such a camera, as in image_pipeline.)
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Optional, Tuple

from dro_depth.errors import ConfigError
from .conversions import stamp_to_ns

__all__ = ['ExactTimePairer', 'CameraPairing', 'PAIRING_MODES', 'have_message_filters']

PAIRING_MODES = ('exact', 'latest', 'latched')


def have_message_filters() -> bool:
    try:
        import message_filters  # noqa: F401
    except ImportError:
        return False
    return True


class ExactTimePairer:
    """Exact-stamp pairing of two streams with bounded buffers (pure Python, thread-safe).

    Args:
        queue_size: messages of each stream kept while waiting for their partner.
        on_unpaired: called with (image, reason) for each image evicted without a partner.
    """

    def __init__(self, queue_size: int = 10,
                 on_unpaired: Callable[[Any, str], None] = lambda image, reason: None) -> None:
        if queue_size < 1:
            raise ConfigError(f'queue_size must be >= 1, got {queue_size}')
        self.queue_size = int(queue_size)
        self._on_unpaired = on_unpaired
        self._images: 'OrderedDict[int, Any]' = OrderedDict()
        self._infos: 'OrderedDict[int, Any]' = OrderedDict()
        self._lock = threading.Lock()
        self.paired = 0
        self.unpaired_images = 0
        self.unpaired_infos = 0
        self.duplicate_images = 0
        self.infos_seen = 0

    @property
    def pending_images(self) -> int:
        with self._lock:
            return len(self._images)

    @property
    def pending_infos(self) -> int:
        with self._lock:
            return len(self._infos)

    def add_image(self, stamp_ns: int, image: Any) -> Optional[Tuple[Any, Any]]:
        """Add an image; returns (image, info) if its CameraInfo is already here."""
        evicted = []
        with self._lock:
            info = self._infos.pop(stamp_ns, None)
            if info is not None:
                self.paired += 1
                return image, info
            if stamp_ns in self._images:
                # Same stamp twice: keep the newer image, count the older.
                evicted.append((self._images.pop(stamp_ns), 'a newer image has the same stamp'))
                self.duplicate_images += 1
            self._images[stamp_ns] = image
            while len(self._images) > self.queue_size:
                _, old = self._images.popitem(last=False)
                self.unpaired_images += 1
                reason = ('no CameraInfo has been received' if self.infos_seen == 0 else
                          'no CameraInfo with the same stamp arrived within '
                          f'{self.queue_size} newer images')
                evicted.append((old, reason))
        for old, reason in evicted:
            self._on_unpaired(old, reason)
        return None

    def add_info(self, stamp_ns: int, info: Any) -> Optional[Tuple[Any, Any]]:
        """Add a CameraInfo; returns (image, info) if its image is waiting."""
        with self._lock:
            self.infos_seen += 1
            image = self._images.pop(stamp_ns, None)
            if image is not None:
                self.paired += 1
                return image, info
            self._infos[stamp_ns] = info
            while len(self._infos) > self.queue_size:
                self._infos.popitem(last=False)
                self.unpaired_infos += 1
        return None


class CameraPairing:
    """Image + CameraInfo subscriptions of a node, calling ``callback(image, info)`` for each pair.

    Args:
        node: the rclpy node.
        qos: QoS of both subscriptions (the CameraInfo QoS is latched in ``latched`` mode).
        callback: called on the executor thread with each pair.
        on_image: called for every image received (before pairing), for statistics.
        on_info: called for every CameraInfo received.
        on_unpaired: called with (image, reason) for each image that found no CameraInfo.
        mode: one of :data:`PAIRING_MODES`.
        queue_size: buffer size of the exact pairing.
        image_topic, info_topic: topic names (relative, so they are remappable).
        use_message_filters: use message_filters when importable (exact mode only).
    """

    def __init__(self, node: Any, qos: Any, callback: Callable[[Any, Any], None],
                 on_image: Callable[[Any], None] = lambda msg: None,
                 on_info: Callable[[Any], None] = lambda msg: None,
                 on_unpaired: Callable[[Any, str], None] = lambda msg, reason: None,
                 mode: str = 'exact', queue_size: int = 10, image_topic: str = 'image',
                 info_topic: str = 'camera_info', use_message_filters: bool = True) -> None:
        from sensor_msgs.msg import CameraInfo, Image

        from .qos import latched_qos

        if mode not in PAIRING_MODES:
            raise ConfigError(f'camera_info mode must be one of {PAIRING_MODES}, got {mode!r}')
        self.mode = mode
        self._node = node
        self._callback = callback
        self._on_image = on_image
        self._on_info = on_info
        self._on_unpaired = on_unpaired
        self._latest_info = None
        self._last_info_time: Optional[float] = None
        self._lock = threading.Lock()
        self._images = 0
        self._paired = 0
        self._unpaired = 0
        self._subs = []
        self._sync = None
        self._pairer: Optional[ExactTimePairer] = None

        if mode == 'exact' and use_message_filters and have_message_filters():
            import message_filters

            self.backend = 'message_filters.TimeSynchronizer'
            image_sub = message_filters.Subscriber(node, Image, image_topic, qos_profile=qos)
            info_sub = message_filters.Subscriber(node, CameraInfo, info_topic, qos_profile=qos)
            # Registered before the synchronizer connects, so these run first for each message.
            image_sub.registerCallback(self._count_image)
            info_sub.registerCallback(self._count_info)
            self._sync = message_filters.TimeSynchronizer([image_sub, info_sub], queue_size)
            self._sync.registerCallback(self._emit)
            self._subs = [image_sub, info_sub]
            self._queue_size = queue_size
        elif mode == 'exact':
            self.backend = 'ExactTimePairer'
            self._pairer = ExactTimePairer(queue_size, on_unpaired=self._unpaired_image)
            self._subs = [node.create_subscription(Image, image_topic, self._image_exact, qos),
                          node.create_subscription(CameraInfo, info_topic, self._info_exact, qos)]
        else:
            self.backend = f'{mode} CameraInfo'
            info_qos = latched_qos() if mode == 'latched' else qos
            self._subs = [node.create_subscription(Image, image_topic, self._image_latest, qos),
                          node.create_subscription(CameraInfo, info_topic, self._info_latest, info_qos)]

    # -------------------------------------------------------------------- statistics
    def pending_unpaired(self) -> int:
        """Images received that are still waiting for their CameraInfo."""
        if self._pairer is not None:
            return self._pairer.pending_images
        if self._sync is not None:
            queues = getattr(self._sync, 'queues', None)
            return len(queues[0]) if queues else 0
        return 0

    def unpaired(self) -> int:
        """Images that found no CameraInfo (evicted from the buffer, or none received in latest modes)."""
        if self._sync is not None:
            # message_filters drops silently: everything received, not paired and not waiting.
            with self._lock:
                return max(self._images - self._paired - self.pending_unpaired(), 0)
        with self._lock:
            return self._unpaired

    def seconds_since_camera_info(self) -> float:
        """Steady-clock seconds since the last CameraInfo (inf if none yet)."""
        with self._lock:
            return float('inf') if self._last_info_time is None else time.monotonic() - self._last_info_time

    # -------------------------------------------------------------------- callbacks
    def _count_image(self, msg: Any) -> None:
        with self._lock:
            self._images += 1
        self._on_image(msg)

    def _count_info(self, msg: Any) -> None:
        with self._lock:
            self._last_info_time = time.monotonic()
        self._on_info(msg)

    def _emit(self, image: Any, info: Any) -> None:
        with self._lock:
            self._paired += 1
        self._callback(image, info)

    def _unpaired_image(self, image: Any, reason: str) -> None:
        with self._lock:
            self._unpaired += 1
        self._on_unpaired(image, reason)

    def _image_exact(self, msg: Any) -> None:
        self._count_image(msg)
        pair = self._pairer.add_image(stamp_to_ns(msg.header.stamp), msg)
        if pair is not None:
            self._emit(*pair)

    def _info_exact(self, msg: Any) -> None:
        self._count_info(msg)
        pair = self._pairer.add_info(stamp_to_ns(msg.header.stamp), msg)
        if pair is not None:
            self._emit(*pair)

    def _image_latest(self, msg: Any) -> None:
        self._count_image(msg)
        info = self._latest_info
        if info is None:
            self._unpaired_image(msg, f'no CameraInfo received yet ({self.mode} mode)')
            return
        self._emit(msg, info)

    def _info_latest(self, msg: Any) -> None:
        self._count_info(msg)
        self._latest_info = msg

    def destroy(self) -> None:
        for sub in self._subs:
            if self._sync is None:
                self._node.destroy_subscription(sub)
            elif hasattr(sub, 'sub'):
                self._node.destroy_subscription(sub.sub)
        self._subs = []
