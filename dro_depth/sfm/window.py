"""Keyframe window: which past frames serve as DRO's references.

A frame becomes a keyframe when the camera has moved enough since the newest keyframe (translation
relative to scene depth, or rotation), or when too long has passed while the camera was moving. A
static camera therefore never fills the window with copies of one view, which would leave DRO with a
zero baseline.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Deque, List, Optional

import numpy as np
import torch

from dro_depth.geometry import rotation_angle, translation_norm
from dro_depth.errors import ConfigError

__all__ = ['Keyframe', 'KeyframePolicy', 'KeyframeWindow']


@dataclass
class Keyframe:
    """A reference frame: the network-resolution image and its pose in the world (odometry) frame."""

    image: torch.Tensor          # [3, h, w] float in [0, 1], on the estimator's device
    T_world_cam: np.ndarray      # [4, 4] float64
    stamp: float
    median_depth: float          # of the frame's own depth estimate, for a scale-free baseline test
    index: int                   # frame counter
    covariance: np.ndarray = field(default_factory=lambda: np.zeros((6, 6)))  # of T_world_cam
    features: Optional[torch.Tensor] = None   # cached DRO fnet features [C, h/8, w/8], if the model has them


@dataclass(frozen=True)
class KeyframePolicy:
    """When a frame becomes a keyframe.

    Attributes:
        min_baseline_ratio: translation since the newest keyframe divided by the scene's median depth
            above which a frame is a keyframe (scale-free, so it works before the scale is metric).
        min_rotation_deg: rotation since the newest keyframe above which a frame is a keyframe.
        max_interval: seconds after which a moving camera's frame is a keyframe anyway.
        min_interval: seconds that must pass between keyframes.
    """

    min_baseline_ratio: float = 0.02
    min_rotation_deg: float = 3.0
    max_interval: float = 1.0
    min_interval: float = 0.0

    def __post_init__(self) -> None:
        for name in ('min_baseline_ratio', 'min_rotation_deg', 'max_interval', 'min_interval'):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ConfigError(f'keyframe policy: {name} must be finite and >= 0, got {value}')


class KeyframeWindow:
    """A bounded window of the newest keyframes, newest first."""

    def __init__(self, size: int, policy: KeyframePolicy | None = None) -> None:
        if size < 1:
            raise ConfigError(f'the keyframe window needs at least one reference frame, got {size}')
        self.size = int(size)
        self.policy = policy or KeyframePolicy()
        self._frames: Deque[Keyframe] = deque(maxlen=self.size)

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def newest(self) -> Optional[Keyframe]:
        return self._frames[0] if self._frames else None

    def references(self) -> List[Keyframe]:
        """The keyframes to use as references, newest first."""
        return list(self._frames)

    def clear(self) -> None:
        self._frames.clear()

    def resize(self, size: int) -> None:
        if size < 1:
            raise ConfigError(f'the keyframe window needs at least one reference frame, got {size}')
        self.size = int(size)
        self._frames = deque(list(self._frames)[:self.size], maxlen=self.size)

    def motion_since_newest(self, T_world_cam: np.ndarray) -> tuple[float, float]:
        """(baseline / median depth, rotation in degrees) relative to the newest keyframe."""
        kf = self.newest
        if kf is None:
            return float('inf'), float('inf')
        T_kf_cam = np.linalg.solve(kf.T_world_cam, T_world_cam)
        ratio = translation_norm(T_kf_cam) / max(kf.median_depth, 1e-6)
        return ratio, float(np.degrees(rotation_angle(T_kf_cam)))

    def wants(self, T_world_cam: np.ndarray, stamp: float, static: bool) -> bool:
        """Whether a frame with this pose and stamp should become a keyframe."""
        kf = self.newest
        if kf is None:
            return True
        dt = stamp - kf.stamp
        if dt < self.policy.min_interval:
            return False
        ratio, rot_deg = self.motion_since_newest(T_world_cam)
        if ratio >= self.policy.min_baseline_ratio or rot_deg >= self.policy.min_rotation_deg:
            return True
        return dt >= self.policy.max_interval and not static

    def push(self, keyframe: Keyframe) -> None:
        self._frames.appendleft(keyframe)
