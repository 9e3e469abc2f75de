"""Read rectified stereo pairs with ground-truth depth from a ROS 2 bag (``rosbags``, no rclpy).

:class:`StereoBagReader` joins five topics by **exact** header stamp (integer nanoseconds): left and right
images (``sensor_msgs/Image`` or ``CompressedImage``), both ``CameraInfo`` and a ground-truth depth image of
the left view (32FC1 metres, or 16UC1 / mono16 millimetres with 0 invalid, REP 118). The unit is the left
image: one whose stamp is missing on any other topic is not yielded but counted in
:attr:`StereoBagReader.skipped` under a reason that names what is missing, e.g.
``'unpaired: no right image'``; a second left image with an already seen stamp counts as
``'duplicate_stamp'``; a frame whose image or depth cannot be decoded counts as ``'bad_encoding'``.
Messages of the other topics whose stamp no left image has are counted per topic in
:attr:`StereoBagReader.unmatched`.

Two passes over the bag: the first reads the stamps (and keeps the small camera_infos), the second decodes
only the images of complete pairs, so stamps that never match cannot fill memory.

Example::

    reader = StereoBagReader('bags/stereo', StereoTopics('/left/image', '/right/image', '/left/camera_info',
                                                         '/right/camera_info', '/left/depth'))
    for f in reader:       # f.left, f.right: (H, W, 3) uint8 RGB; f.depth: (H, W) float32 m, NaN invalid
        ...
    reader.skipped               # {'unpaired: no depth': 2}
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bags import IMAGE_TYPES, BagError, _open, _resolve, _stamp_ns, decode_image_msg, list_topics
from .image_encoding import ImageEncodingError, depth_to_metres, to_rgb

__all__ = ['StereoTopics', 'CameraInfoData', 'StereoBagFrame', 'StereoBagReader']

logger = logging.getLogger(__name__)

_INFO = 'sensor_msgs/msg/CameraInfo'
_ROLES = ('left', 'right', 'left_info', 'right_info', 'depth')
_ROLE_NAMES = {'left': 'left image', 'right': 'right image', 'left_info': 'left camera_info',
               'right_info': 'right camera_info', 'depth': 'depth'}
_ALLOWED = {'left': IMAGE_TYPES, 'right': IMAGE_TYPES, 'left_info': (_INFO,), 'right_info': (_INFO,),
            'depth': ('sensor_msgs/msg/Image',)}


@dataclass(frozen=True)
class StereoTopics:
    """The five topics of a stereo evaluation bag (with or without the leading slash)."""

    left: str
    right: str
    left_info: str
    right_info: str
    depth: str


@dataclass(frozen=True)
class CameraInfoData:
    """What the evaluation needs of a ``sensor_msgs/CameraInfo``.

    Attributes:
        P: float64 (3, 4) projection matrix. R: float64 (3, 3) rectification rotation.
        width, height: image size. frame_id: header frame.
    """

    P: np.ndarray
    R: np.ndarray
    width: int
    height: int
    frame_id: str


@dataclass
class StereoBagFrame:
    """One complete stereo pair with ground truth.

    Attributes:
        index: count of yielded frames. stamp_ns: the common header stamp.
        left, right: uint8 (H, W, 3) RGB. depth: float32 (h, w) metres, NaN invalid (not yet checked
            against the image size).
        left_info, right_info: :class:`CameraInfoData`.
        left_frame_id, depth_frame_id: header frames of the left image and the depth image.
    """

    index: int
    stamp_ns: int
    left: np.ndarray
    right: np.ndarray
    depth: np.ndarray
    left_info: CameraInfoData
    right_info: CameraInfoData
    left_frame_id: str
    depth_frame_id: str


def _info_data(msg) -> CameraInfoData:
    return CameraInfoData(P=np.asarray(msg.p, np.float64).reshape(3, 4).copy(),
                          R=np.asarray(msg.r, np.float64).reshape(3, 3).copy(), width=int(msg.width),
                          height=int(msg.height), frame_id=str(msg.header.frame_id))


class StereoBagReader:
    """Exact-stamp stereo pairs with ground-truth depth from one bag (see the module docstring).

    Args:
        path: bag directory (sqlite3 or mcap). topics: :class:`StereoTopics`.

    Raises:
        BagError: missing or unreadable bag; a topic the bag lacks or of the wrong type (the message
            lists the bag's topics and types).
    """

    def __init__(self, path: str | Path, topics: StereoTopics) -> None:
        self.path = Path(path)
        available = list_topics(self.path)
        self.topics = {role: _resolve(available, getattr(topics, role), _ROLE_NAMES[role], _ALLOWED[role],
                                      self.path) for role in _ROLES}
        self.skipped: dict[str, int] = {}
        self.skip_details: dict[str, str] = {}     # reason -> the first example, for the report
        self.unmatched: dict[str, int] = {}
        self.frames_in_bag = 0
        self._infos: dict[str, dict[int, CameraInfoData]] = {'left_info': {}, 'right_info': {}}
        self._complete: set[int] = set()
        self._read_stamps()

    def __len__(self) -> int:
        """Complete pairs found by the first pass (frames that fail to decode are skipped later)."""
        return len(self._complete)

    def skip(self, reason: str, detail: str) -> None:
        """Count a skipped left frame under ``reason`` (keeps the first ``detail``)."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.skip_details.setdefault(reason, detail)
        if self.skipped[reason] <= 3:
            logger.warning('%s: frame skipped (%s): %s', self.path, reason, detail)

    def _read_stamps(self) -> None:
        stamps: dict[str, set[int]] = {role: set() for role in _ROLES}
        left_order: list[int] = []
        role_of = {t: r for r, t in self.topics.items()}
        reader = _open(self.path)
        try:
            conns = [c for c in reader.connections if c.topic in role_of]
            for conn, _, raw in reader.messages(connections=conns):
                role = role_of[conn.topic]
                msg = reader.deserialize(raw, conn.msgtype)
                st = _stamp_ns(msg)
                if role in self._infos:
                    self._infos[role].setdefault(st, _info_data(msg))
                if role == 'left':
                    self.frames_in_bag += 1
                    if st in stamps['left']:
                        self.skip('duplicate_stamp', f'a second left image with stamp {st} ns')
                        continue
                    left_order.append(st)
                stamps[role].add(st)
        except BagError:
            raise
        except Exception as e:  # noqa: BLE001 - corrupt storage, undecodable messages
            raise BagError(f'error while reading bag {self.path}: {type(e).__name__}: {e}') from e
        finally:
            reader.close()
        for st in left_order:
            missing = [_ROLE_NAMES[r] for r in _ROLES[1:] if st not in stamps[r]]
            if missing:
                self.skip('unpaired: no ' + ', no '.join(missing),
                          f'left image stamp {st} ns has no {" / ".join(missing)} with the same stamp')
            else:
                self._complete.add(st)
        for role in _ROLES[1:]:
            n = len(stamps[role] - stamps['left'])
            if n:
                self.unmatched[self.topics[role]] = n

    def __iter__(self) -> Iterator[StereoBagFrame]:
        reader = _open(self.path)
        try:
            yield from self._pairs(reader)
        except (BagError, GeneratorExit):
            raise
        except Exception as e:  # noqa: BLE001 - corrupt storage
            raise BagError(f'error while reading bag {self.path}: {type(e).__name__}: {e}') from e
        finally:
            reader.close()

    def _pairs(self, reader) -> Iterator[StereoBagFrame]:
        role_of = {self.topics[r]: r for r in ('left', 'right', 'depth')}
        pending: dict[int, dict[str, tuple]] = {}
        done: set[int] = set()
        index = 0
        conns = [c for c in reader.connections if c.topic in role_of]
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            st = _stamp_ns(msg)
            if st not in self._complete or st in done:
                continue
            got = pending.setdefault(st, {})
            got.setdefault(role_of[conn.topic], (msg, conn.msgtype))
            if len(got) < 3:
                continue
            del pending[st]
            done.add(st)
            frame = self._decode(index, st, got)
            if frame is not None:
                index += 1
                yield frame

    def _decode(self, index: int, st: int, got: dict[str, tuple]) -> StereoBagFrame | None:
        try:
            images = {}
            for role in ('left', 'right'):
                arr, enc = decode_image_msg(*got[role])
                if enc in ('16UC1', 'mono16', '32FC1'):
                    raise ImageEncodingError(f'{role} image is {enc}; expected colour or mono8')
                images[role] = to_rgb(arr, enc)
            arr, enc = decode_image_msg(*got['depth'])
            depth = depth_to_metres(arr, enc)
        except ImageEncodingError as exc:
            self.skip('bad_encoding', f'stamp {st} ns: {exc}')
            return None
        return StereoBagFrame(index=index, stamp_ns=st, left=images['left'], right=images['right'],
                              depth=depth, left_info=self._infos['left_info'][st],
                              right_info=self._infos['right_info'][st],
                              left_frame_id=str(got['left'][0].header.frame_id),
                              depth_frame_id=str(got['depth'][0].header.frame_id))
