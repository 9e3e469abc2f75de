"""In-memory containers shared by the synthetic generator and the dataset readers/writers.

Conventions:
- images are RGB uint8 ``(H, W, 3)``;
- depth is float32 metres along the optical Z axis (REP 118), NaN where unknown / invalid
  (e.g. the sky of synthetic outdoor scenes);
- poses are ``T_world_cam``: 4x4 float64 pose of the camera *optical* frame (x right, y down,
  z forward) in a world frame (``odom``); a point maps as ``X_world = T_world_cam @ X_cam``;
- stamps are float64 seconds; ``stamp_ns`` is the exact integer nanosecond stamp when known.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

DEFAULT_FRAME_ID = 'camera_optical_frame'
DEFAULT_WORLD_FRAME = 'odom'


def stamp_to_ns(stamp: float | int) -> int:
    """Seconds (float) -> integer nanoseconds. Integers (Python or numpy) are taken as nanoseconds."""
    if isinstance(stamp, bool):
        raise TypeError('stamp must be float seconds or int nanoseconds, not bool')
    if isinstance(stamp, (int, np.integer)):
        return int(stamp)
    s = float(stamp)
    if not np.isfinite(s) or s < 0:
        raise ValueError(f'stamp must be finite and >= 0 seconds, got {stamp}')
    return int(round(s * 1e9))


@dataclass
class Frame:
    """One camera frame read from a dataset.

    Attributes:
        index: position in the sequence / bag (0-based).
        stamp: seconds; ``stamp_ns``: the same in integer nanoseconds.
        image: ``(H, W, 3)`` uint8 RGB (mono sources are replicated to three channels).
        K: ``(3, 3)`` float64 intrinsics.
        depth: ``(H, W)`` float32 metres, NaN invalid, or None.
        pose: ``(4, 4)`` float64 T_world_cam of the optical frame, or None.
        frame_id: camera frame of the image header.
        encoding: encoding of the source image ('rgb8', 'bgr8', 'mono8', 'png', ...).
        D: distortion coefficients (may be empty); ``distortion_model`` its model name.
        pose_frame_id: the frame ``pose`` is expressed in (the ground truth's header frame, e.g. 'world'),
            '' when unknown.
    """
    index: int
    stamp: float
    stamp_ns: int
    image: np.ndarray
    K: np.ndarray
    depth: np.ndarray | None = None
    pose: np.ndarray | None = None
    frame_id: str = DEFAULT_FRAME_ID
    encoding: str = 'rgb8'
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distortion_model: str = 'plumb_bob'
    pose_frame_id: str = ''

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass
class Sequence:
    """A sequence of frames held in memory.

    Attributes:
        images: ``(N, H, W, 3)`` uint8 RGB.
        K: ``(3, 3)`` float64 intrinsics (same for all frames).
        stamps: ``(N,)`` float64 seconds.
        depths: ``(N, H, W)`` float32 metres along optical Z, NaN invalid; or None.
        poses: ``(N, 4, 4)`` float64 T_world_cam of the optical frame; or None.
        frame_id: optical frame name; ``metadata``: free-form description (generator parameters).
    """
    images: np.ndarray
    K: np.ndarray
    stamps: np.ndarray
    depths: np.ndarray | None = None
    poses: np.ndarray | None = None
    frame_id: str = DEFAULT_FRAME_ID
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images)
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f'images must be (N, H, W, 3) uint8, got {self.images.shape} '
                             f'{self.images.dtype}')
        n, h, w = self.images.shape[:3]
        self.K = np.asarray(self.K, np.float64)
        if self.K.shape != (3, 3):
            raise ValueError(f'K must be 3x3, got {self.K.shape}')
        self.stamps = np.asarray(self.stamps, np.float64)
        if self.stamps.shape != (n,):
            raise ValueError(f'stamps must have shape ({n},), got {self.stamps.shape}')
        if self.depths is not None:
            self.depths = np.asarray(self.depths, np.float32)
            if self.depths.shape != (n, h, w):
                raise ValueError(f'depths must be ({n}, {h}, {w}), got {self.depths.shape}')
        if self.poses is not None:
            self.poses = np.asarray(self.poses, np.float64)
            if self.poses.shape != (n, 4, 4):
                raise ValueError(f'poses must be ({n}, 4, 4), got {self.poses.shape}')

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    @property
    def valid_masks(self) -> np.ndarray | None:
        """``(N, H, W)`` bool: finite positive ground-truth depth."""
        if self.depths is None:
            return None
        return np.isfinite(self.depths) & (self.depths > 0)

    def frame(self, i: int) -> Frame:
        return Frame(index=int(i), stamp=float(self.stamps[i]), stamp_ns=stamp_to_ns(float(self.stamps[i])),
                     image=self.images[i], K=self.K.copy(),
                     depth=None if self.depths is None else self.depths[i],
                     pose=None if self.poses is None else self.poses[i], frame_id=self.frame_id)

    def frames(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield self.frame(i)

    @classmethod
    def from_frames(cls, frames: list[Frame], metadata: dict | None = None) -> 'Sequence':
        """Stack frames (same size and intrinsics) into a sequence; depth/poses kept only if all have them."""
        if not frames:
            raise ValueError('cannot build a Sequence from zero frames')
        shapes = {f.image.shape for f in frames}
        if len(shapes) != 1:
            raise ValueError(f'frames have different image shapes: {sorted(shapes)}')
        K = frames[0].K
        if any(not np.allclose(f.K, K) for f in frames):
            raise ValueError('frames have different intrinsics; a Sequence needs a single K')
        depths = np.stack([f.depth for f in frames]) if all(f.depth is not None for f in frames) else None
        poses = np.stack([f.pose for f in frames]) if all(f.pose is not None for f in frames) else None
        return cls(images=np.stack([f.image for f in frames]), K=K,
                   stamps=np.array([f.stamp for f in frames]),
                   depths=depths, poses=poses, frame_id=frames[0].frame_id, metadata=dict(metadata or {}))
