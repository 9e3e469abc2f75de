"""The malformed-input classes of the fuzz benchmark, and a seeded storm of them (no node, no rclpy spin).

Every case is an image (and usually its CameraInfo) with a stamp no other case uses, and what the node must
do with it:

* ``refuse``: never publish depth for it (a specific reason is counted in /diagnostics);
* ``valid``: a well-formed frame; it may be published (or dropped as overload / duplicate);
* ``answer``: a valid frame the benchmark waits for: it must be published (paced, so overload cannot
  explain its absence).

``reason`` names the drop reason a refused case must be counted under (``bad_encoding``, ``too_large``,
``unpaired``, ``bad_input``): all of them are decided before the node's mailbox, so each is counted exactly.

Stamps: the storm's clock only moves forward; the stamp classes send one frame off it (5 s back, 1 ns
after, re-sent 1, 2 or 10 frames later). A stamp the node already published must never come out again
(no ROS time jump happens here), which the no-stamp-twice invariant checks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Set

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from dro_depth.ros.conversions import ns_to_stamp
from dro_depth.ros.testing.player import camera_messages

__all__ = ['Case', 'CLASSES', 'Storm']

FRAME = 'camera_optical_frame'


@dataclass
class Case:
    """One storm message: image (+ info), its stamp (ns), the class name and the expectation."""

    name: str
    expect: str                   # 'refuse' | 'valid' | 'answer'
    image: Image
    info: Optional[CameraInfo]
    stamp: int
    reason: str = ''
    frame_id: str = FRAME
    info_first: bool = True


@dataclass
class Storm:
    """State of a seeded storm: the valid images, the camera, the stamp clock and the stamps used.

    Args:
        images: valid uint8 RGB frames [H, W, 3].
        K: their intrinsics (3x3).
        seed: the storm's seed.
        start_ns: first stamp.
        large: (width, height) of the one very large valid frame; ``too_large`` is one pixel row more.
    """

    images: List[np.ndarray]
    K: np.ndarray
    seed: int = 0
    start_ns: int = 1_700_000_000_000_000_000
    large: tuple = (1280, 960)
    rng: np.random.Generator = field(init=False)
    clock: int = field(init=False)
    used: Set[int] = field(init=False, default_factory=set)
    history: List[Case] = field(init=False, default_factory=list)   # valid cases sent, newest last
    i: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.clock = self.start_ns
        self.used = {0}

    # ------------------------------------------------------------------ helpers
    def stamp(self, step_ns: int = 33_333_333) -> int:
        """The next unused stamp ``step_ns`` after the clock (the clock advances)."""
        self.clock += step_ns
        while self.clock in self.used:
            self.clock += 1
        self.used.add(self.clock)
        return self.clock

    def side_stamp(self) -> int:
        """An unused stamp for a refused case (odd offsets between the valid ones; the clock is kept)."""
        s = self.clock + int(self.rng.integers(1, 33_000_000)) | 1
        while s in self.used:
            s += 2
        self.used.add(s)
        return s

    def rgb(self) -> np.ndarray:
        self.i += 1
        return self.images[self.i % len(self.images)]

    def frame(self, stamp: int, K: Optional[np.ndarray] = None, frame_id: str = FRAME, **kw):
        return camera_messages(self.rgb(), self.K if K is None else K, stamp, frame_id, **kw)

    def valid(self, name: str = 'valid', expect: str = 'valid', **kw) -> Case:
        s = self.stamp()
        image, info = self.frame(s, **kw)
        case = Case(name, expect, image, info, s, frame_id=kw.get('frame_id', FRAME))
        self.history.append(case)
        return case

    def bad_image(self, name: str, reason: str, mutate: Callable[[Image], None]) -> Case:
        s = self.side_stamp()
        image, info = self.frame(s)
        mutate(image)
        return Case(name, 'refuse', image, info, s, reason)

    def bad_info(self, name: str, mutate: Callable[[CameraInfo], None], reason: str = 'bad_input') -> Case:
        s = self.side_stamp()
        image, info = self.frame(s)
        mutate(info)
        return Case(name, 'refuse', image, info, s, reason)

    def bad_P(self, name: str, change: Callable[[np.ndarray], None]) -> Case:
        def mutate(info: CameraInfo) -> None:
            P = np.array(info.p, np.float64).reshape(3, 4)
            change(P)
            info.p = [float(v) for v in P.ravel()]
        return self.bad_info(name, mutate)

    def resend(self, name: str, back: int) -> Optional[Case]:
        """A valid frame sent ``back`` frames ago, again (same stamp, same content)."""
        if len(self.history) < back:
            return None
        old = self.history[-back]
        return Case(name, 'valid', old.image, old.info, old.stamp, frame_id=old.frame_id)

    def cases(self, n: int) -> Iterator[Case]:
        """Every class once (shuffled), then ``n`` more: half valid frames, half random classes."""
        names = list(CLASSES)
        order = [names[k] for k in self.rng.permutation(len(names))]
        order += ['valid' if self.rng.random() < 0.5 else names[int(self.rng.integers(len(names)))]
                  for _ in range(n)]
        for name in order:
            if name != 'valid' and self.rng.random() < 0.5:
                yield self.valid()                          # valid frames interleaved everywhere
            case = self.valid() if name == 'valid' else CLASSES[name](self)
            if case is not None:
                yield case


def _encoding(enc: str, bpp: int) -> Callable[[Storm], Case]:
    def build(st: Storm) -> Case:
        def mutate(im: Image) -> None:
            im.encoding = enc
            im.step = int(im.width) * bpp
            im.data = bytes(int(im.step) * int(im.height))
        return st.bad_image(f'encoding {enc!r}', 'bad_encoding', mutate)
    return build


def _set(**values) -> Callable[[Image], None]:
    def mutate(im: Image) -> None:
        for k, v in values.items():
            setattr(im, k, v)
    return mutate


def _missing_info(st: Storm) -> Case:
    s = st.side_stamp()
    image, _ = st.frame(s)
    return Case('camera_info missing', 'refuse', image, None, s, 'unpaired')


def _info_1ns_off(st: Storm) -> Case:
    s = st.side_stamp()
    image, info = st.frame(s)
    info.header = Header(stamp=ns_to_stamp(s + 1), frame_id=FRAME)     # image and info share one Header
    st.used.add(s + 1)
    return Case('camera_info stamp 1 ns off', 'refuse', image, info, s, 'unpaired')


def _info_other_size(st: Storm) -> Case:
    def mutate(info: CameraInfo) -> None:
        info.width, info.height = 2 * int(info.width), 2 * int(info.height)
        info.p = [float(v) * (2 if k in (0, 2, 5, 6) else 1) for k, v in enumerate(info.p)]
    return st.bad_info('camera_info for another size', mutate)


def _info_empty(st: Storm) -> Case:
    s = st.side_stamp()
    image, _ = st.frame(s)
    info = CameraInfo()
    info.header = image.header
    return Case('camera_info empty (uncalibrated)', 'refuse', image, info, s, 'bad_input')


def _empty(st: Storm) -> Case:
    return Case('empty Image + CameraInfo (stamp 0)', 'refuse', Image(), CameraInfo(), 0, 'bad_encoding')


def _empty_image_only(st: Storm) -> Case:
    s = st.side_stamp()
    image = Image()
    image.header.stamp = ns_to_stamp(s)
    info = CameraInfo()
    info.header.stamp = ns_to_stamp(s)
    return Case('empty Image with rgb8 encoding', 'refuse', _with(image, encoding='rgb8'), info, s,
                'bad_input')


def _with(im: Image, **values) -> Image:
    _set(**values)(im)
    return im


def _k_bad_p_good(st: Storm) -> Case:
    """Rectified input uses P: an implausible K beside a good P must be answered (P, not K, is used)."""
    s = st.stamp()
    image, info = st.frame(s)
    K = np.array(info.k, np.float64).reshape(3, 3)
    K[0, 0] = K[1, 1] = 1e-30
    K[0, 1] = 1e6
    info.k = [float(v) for v in K.ravel()]
    case = Case('K implausible, P good (rectified uses P)', 'answer', image, info, s)
    st.history.append(case)
    return case


def _k_good_p_bad(st: Storm) -> Case:
    return st.bad_P('P skewed 1e6, K good', lambda P: P.__setitem__((0, 1), 1e6))


def _resend(name: str, back: int) -> Callable[[Storm], Optional[Case]]:
    return lambda st: st.resend(name, back)


def _one_ns(st: Storm) -> Case:
    s = st.clock + 1
    while s in st.used:
        s += 1
    st.used.add(s)
    st.clock = s
    image, info = st.frame(s)
    case = Case('stamp 1 ns after the previous', 'valid', image, info, s)
    st.history.append(case)
    return case


def _backwards(st: Storm) -> Case:
    """One frame 5 s before the clock: inside time already published (refused as duplicate_stamp) once the
    storm has run 5 s, else a new run; the clock then goes on forward."""
    s = st.clock - 5_000_000_000
    while s in st.used:
        s += 1
    st.used.add(s)
    image, info = st.frame(s)
    return Case('stamp 5 s backwards', 'valid', image, info, s)


def _jump(st: Storm) -> Case:
    st.clock += 3_600_000_000_000
    return st.valid('stamp jumps 1 h forward')


def _large(st: Storm) -> Case:
    w, h = st.large
    s = st.stamp()
    rgb = np.ascontiguousarray(np.resize(st.rgb(), (h, w, 3)))
    scale = w / st.images[0].shape[1]
    K = st.K.copy()
    K[:2] *= scale
    image, info = camera_messages(rgb, K, s)
    return Case(f'very large valid frame {w}x{h}', 'answer', image, info, s)


def _too_large(st: Storm) -> Case:
    w, h = st.large
    s = st.side_stamp()
    rgb = np.zeros((h + 1, w, 3), np.uint8)
    image, info = camera_messages(rgb, st.K * np.array([[w / st.images[0].shape[1]] * 3] * 2 + [[1] * 3]), s)
    return Case(f'valid frame {w}x{h + 1} over max_input_pixels', 'refuse', image, info, s, 'too_large')


CLASSES: Dict[str, Callable[[Storm], Optional[Case]]] = {
    # encodings (refused at the executor, before any copy)
    'enc_16UC1': _encoding('16UC1', 2),
    'enc_32FC1': _encoding('32FC1', 4),
    'enc_yuv422': _encoding('yuv422', 2),
    'enc_bayer': _encoding('bayer_rggb8', 1),
    'enc_empty': _encoding('', 3),
    'enc_unicode': _encoding('rgb8\u00e9', 3),
    'enc_upper': lambda st: _upper(st),
    'enc_bgra8': lambda st: st.valid('encoding bgra8', encoding='bgra8'),
    'enc_mono8': lambda st: st.valid('encoding mono8', encoding='mono8'),
    # sizes and steps
    'data_short': lambda st: st.bad_image('data 1 byte short', 'bad_input', lambda im: setattr(
        im, 'data', bytes(im.data)[:-1])),
    'data_empty': lambda st: st.bad_image('data empty, size set', 'bad_input', _set(data=b'')),
    'step_small': lambda st: st.bad_image('step < width x 3', 'bad_input', lambda im: setattr(
        im, 'step', int(im.width) * 3 - 1)),
    'step_zero': lambda st: st.bad_image('step 0', 'bad_input', _set(step=0)),
    'step_huge': lambda st: st.bad_image('step 2**31 - 1, data short', 'bad_input', _set(step=2 ** 31 - 1)),
    'step_padded': lambda st: st.valid('step padded by 7 bytes', row_padding=7),
    'width_zero': lambda st: st.bad_image('width 0', 'bad_input', _set(width=0)),
    'dims_swapped': lambda st: st.bad_image('width and height swapped', 'bad_input', lambda im: _with(
        im, width=int(im.height), height=int(im.width), step=int(im.height) * 3)),
    'dims_huge': lambda st: st.bad_image('100000 x 100000, tiny data', 'too_large',
                                         _set(width=100_000, height=100_000, step=300_000)),
    # endianness (irrelevant for 8-bit pixels: accepted)
    'big_endian': lambda st: _big_endian(st),
    # intrinsics (rectified input: P is what counts)
    'fx_1e-30': lambda st: st.bad_P('fx = 1e-30', lambda P: P.__setitem__((0, 0), 1e-30)),
    'fx_1e-40': lambda st: st.bad_P('fx = fy = 1e-40', lambda P: (P.__setitem__((0, 0), 1e-40),
                                                                  P.__setitem__((1, 1), 1e-40))),
    'fx_1e300': lambda st: st.bad_P('fx = 1e300', lambda P: P.__setitem__((0, 0), 1e300)),
    'fx_negative': lambda st: st.bad_P('fx < 0', lambda P: P.__setitem__((0, 0), -P[0, 0])),
    'fx_nan': lambda st: st.bad_P('fx NaN', lambda P: P.__setitem__((0, 0), math.nan)),
    'cy_inf': lambda st: st.bad_P('cy inf', lambda P: P.__setitem__((1, 2), math.inf)),
    'skew_1e6': lambda st: st.bad_P('skew 1e6', lambda P: P.__setitem__((0, 1), 1e6)),
    'skew_small': lambda st: st.bad_P('skew 0.01 fx', lambda P: P.__setitem__((0, 1), 0.01 * P[0, 0])),
    'bottom_row': lambda st: st.bad_P('bottom row (0, 0, 2)', lambda P: P.__setitem__((2, 2), 2.0)),
    'bottom_row_x': lambda st: st.bad_P('bottom row (1e-3, 0, 1)', lambda P: P.__setitem__((2, 0), 1e-3)),
    'aspect_20': lambda st: st.bad_P('fx = 20 fy', lambda P: P.__setitem__((0, 0), 20 * P[1, 1])),
    'centre_outside': lambda st: st.bad_P('cx = 3 x width', lambda P: P.__setitem__((0, 2), 3 * P[0, 2] * 2)),
    'P_zero': lambda st: st.bad_P('P all zero (uncalibrated)', lambda P: P.__setitem__(slice(None), 0.0)),
    'P_row3_zero': lambda st: st.bad_info('P third row all zero', _short_p),
    'K_bad_P_good': _k_bad_p_good,
    'K_good_P_bad': _k_good_p_bad,
    # camera_info pairing
    'info_missing': _missing_info,
    'info_1ns_off': _info_1ns_off,
    'info_other_size': _info_other_size,
    'info_empty': _info_empty,
    # stamps
    'stamp_duplicate': _resend('stamp duplicated (A, A)', 1),
    'stamp_stale': _resend('stale re-delivery (A, B, A)', 2),
    'stamp_resent_later': _resend('stamp re-sent 10 frames later (X, Y, ..., X)', 10),
    'stamp_1ns': _one_ns,
    'stamp_backwards': _backwards,
    'stamp_jump': _jump,
    # frames
    'frame_change': lambda st: st.valid('frame_id changes', expect='answer', frame_id='other_camera_optical'),
    # empty messages
    'empty': _empty,
    'empty_rgb8': _empty_image_only,
    # size cap
    'large_valid': _large,
    'too_large': _too_large,
}


def _upper(st: Storm) -> Case:
    case = st.valid('encoding RGB8 (upper case)')
    case.image.encoding = 'RGB8'
    return case


def _big_endian(st: Storm) -> Case:
    case = st.valid('is_bigendian 1 (8-bit pixels)')
    case.image.is_bigendian = 1
    return case


def _short_p(info: CameraInfo) -> None:
    """CameraInfo.p is a fixed 12-array over DDS (a short one cannot be sent): zero its last row."""
    p = list(info.p)
    p[8:] = [0.0, 0.0, 0.0, 0.0]
    info.p = p
