"""torch ``Dataset`` of (target, references) samples drawn from in-memory sequences, for training.

Each sample is a target frame ``t`` with reference frames ``t + k`` for the configured offsets, resized
to the network resolution with the intrinsics rescaled by :meth:`PinholeCamera.resized` (pixel-centre
aligned, like ``cv2.resize``: ``fx' = fx * sx``, ``cx' = (cx + 0.5) * sx - 0.5``).

Relative poses follow the DRO convention: ``T_ref_tgt`` maps target-camera coordinates into the
reference camera, ``X_ref = R X_tgt + t``, i.e. ``T_ref_tgt = inv(T_world_ref) @ T_world_tgt``.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence as Seq

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .sequence import Sequence
from dro_depth.geometry import PinholeCamera

logger = logging.getLogger(__name__)


def resize_image(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area filter when shrinking, bilinear when enlarging."""
    if img.shape[:2] == (height, width):
        return img
    shrink = height * width < img.shape[0] * img.shape[1]
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_depth(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour (pixel-centre exact) resize, so no depth is invented across edges; NaN kept."""
    if depth.shape[:2] == (height, width):
        return depth
    return cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


class SequenceDataset(Dataset):
    """Samples ``(target, refs, K, depth_gt, T_ref_tgt)`` from sequences.

    Args:
        sequences: in-memory :class:`Sequence` objects (e.g. from the synthetic generator or readers).
        offsets: reference frame offsets relative to the target, e.g. ``(-1, 1)`` or ``(-2, 2)``.
        height, width: network resolution (default: the sequences' own).
        skip_static: drop samples where a reference pose equals the target pose (needs poses).

    Each item is a dict:
        ``image`` ``[3, H, W]`` float32 in [0, 1]; ``refs`` ``[R, 3, H, W]``; ``K`` ``[3, 3]`` float32;
        ``depth`` ``[1, H, W]`` float32 metres, NaN invalid (all NaN if the sequence has no depth);
        ``T_ref_tgt`` ``[R, 4, 4]`` float32 (NaN if no poses); ``pose`` ``[4, 4]`` T_world_tgt;
        ``stamp`` float64 scalar; ``seq`` and ``frame`` int64 scalars.
    """

    def __init__(self, sequences: Seq[Sequence], offsets: Seq[int] = (-1, 1), height: int | None = None,
                 width: int | None = None, skip_static: bool = False):
        if isinstance(sequences, Sequence):
            sequences = [sequences]
        self.sequences = list(sequences)
        if not self.sequences:
            raise ValueError('SequenceDataset needs at least one sequence')
        self.offsets = tuple(int(k) for k in offsets)
        if not self.offsets or 0 in self.offsets:
            raise ValueError(f'offsets must be non-empty and non-zero, got {offsets}')
        self.height, self.width = height, width
        if (height is None) != (width is None):
            raise ValueError('give both height and width, or neither')
        lo, hi = min(0, *self.offsets), max(0, *self.offsets)
        self.index: list[tuple[int, int]] = []
        for s, seq in enumerate(self.sequences):
            for t in range(-lo, len(seq) - hi):
                if skip_static:
                    if seq.poses is None:
                        raise ValueError('skip_static needs sequences with poses')
                    if any(np.array_equal(seq.poses[t], seq.poses[t + k]) for k in self.offsets):
                        continue
                self.index.append((s, t))
        if not self.index:
            logger.warning('SequenceDataset is empty: sequences are shorter than the offsets %s need',
                           self.offsets)

    def __len__(self) -> int:
        return len(self.index)

    def _image(self, seq: Sequence, i: int, h: int, w: int) -> torch.Tensor:
        img = resize_image(seq.images[i], h, w)
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)

    def __getitem__(self, item: int) -> dict:
        s, t = self.index[item]
        seq = self.sequences[s]
        h = self.height or seq.height
        w = self.width or seq.width
        K = PinholeCamera(seq.K, seq.width, seq.height).resized(w, h).K
        if seq.depths is not None:
            depth = torch.from_numpy(np.ascontiguousarray(resize_depth(seq.depths[t], h, w)))[None]
        else:
            depth = torch.full((1, h, w), float('nan'))
        if seq.poses is not None:
            rel = np.stack([np.linalg.inv(seq.poses[t + k]) @ seq.poses[t] for k in self.offsets])
            pose = seq.poses[t]
        else:
            rel = np.full((len(self.offsets), 4, 4), np.nan)
            pose = np.full((4, 4), np.nan)
        return {'image': self._image(seq, t, h, w),
                'refs': torch.stack([self._image(seq, t + k, h, w) for k in self.offsets]),
                'K': torch.from_numpy(K).float(), 'depth': depth.float(),
                'T_ref_tgt': torch.from_numpy(rel).float(), 'pose': torch.from_numpy(pose).float(),
                'stamp': torch.tensor(float(seq.stamps[t]), dtype=torch.float64),
                'seq': torch.tensor(s), 'frame': torch.tensor(t)}
