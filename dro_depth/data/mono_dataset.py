"""torch ``Dataset`` of single images with metric depth and an indoor/outdoor label, for the metric model.

Each sequence frame is one sample. The domain label comes from the sequence metadata (``kind`` of the
synthetic generator, or a ``domain`` entry); a sequence with neither needs an explicit label. Augmentation
(training only) is a horizontal flip and a mild brightness/contrast/colour change: nothing that changes
the camera's field of view, because single-image metric depth depends on it.
"""
from __future__ import annotations

from collections.abc import Sequence as Seq
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from .dataset import resize_depth, resize_image
from .sequence import Sequence

__all__ = ['MonoDepthDataset', 'DOMAIN_LABELS', 'HEAD_MAX_DEPTH', 'domain_of']

#: Label index of each domain: the order of the ZoeDepth NK router's output (0 = NYU / indoor).
DOMAIN_LABELS = {'indoor': 0, 'outdoor': 1}
#: Depth range (metres) of each domain's head, as in the released heads (NYU 10 m, KITTI 80 m): trained and
#: evaluated within it.
HEAD_MAX_DEPTH = {'indoor': 10.0, 'outdoor': 80.0}


def domain_of(seq: Sequence) -> str:
    """'indoor' or 'outdoor' from the sequence metadata (``domain`` or the generator's ``kind``)."""
    meta = seq.metadata or {}
    label = meta.get('domain', meta.get('kind'))
    if label not in DOMAIN_LABELS:
        raise ValueError(f'sequence has no indoor/outdoor label (metadata domain/kind = {label!r}); pass '
                         'domains=[...] to MonoDepthDataset')
    return str(label)


class MonoDepthDataset(Dataset):
    """Samples ``{'image', 'depth', 'domain'}`` from every frame of ``sequences``.

    Args:
        sequences: sequences with depth (metres, NaN invalid).
        height, width: network size (images area-resized, depth nearest).
        domains: per-sequence 'indoor' / 'outdoor' (default: from metadata, see :func:`domain_of`).
        augment: random flip and photometric change (seeded per item and epoch-free, so runs repeat).
        seed: augmentation seed.

    Items: ``image`` ``[3, H, W]`` float32 in [0, 1]; ``depth`` ``[1, H, W]`` float32 metres (NaN invalid);
    ``domain`` int64 scalar (0 indoor, 1 outdoor).
    """

    def __init__(self, sequences: Seq[Sequence], height: int, width: int,
                 domains: Optional[Seq[str]] = None, augment: bool = False, seed: int = 0) -> None:
        self.sequences = list(sequences)
        if not self.sequences:
            raise ValueError('MonoDepthDataset needs at least one sequence')
        missing = [i for i, s in enumerate(self.sequences) if s.depths is None]
        if missing:
            raise ValueError(f'sequences {missing} have no depth ground truth')
        if domains is None:
            domains = [domain_of(s) for s in self.sequences]
        if len(domains) != len(self.sequences):
            raise ValueError(f'{len(domains)} domains for {len(self.sequences)} sequences')
        bad = sorted({d for d in domains if d not in DOMAIN_LABELS})
        if bad:
            raise ValueError(f'domains must be indoor or outdoor, got {bad}')
        self.labels = [DOMAIN_LABELS[d] for d in domains]
        self.height, self.width = int(height), int(width)
        self.augment, self.seed = augment, seed
        self._calls = 0
        self.index = [(s, t) for s, seq in enumerate(self.sequences) for t in range(len(seq))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict:
        s, t = self.index[item]
        seq = self.sequences[s]
        img = resize_image(seq.images[t], self.height, self.width).astype(np.float32) / 255.0
        depth = resize_depth(seq.depths[t].astype(np.float32), self.height, self.width)
        if self.augment:
            self._calls += 1
            rng = np.random.default_rng((self.seed, item, self._calls))
            if rng.random() < 0.5:
                img, depth = img[:, ::-1], depth[:, ::-1]
            gain = rng.uniform(0.8, 1.2) * rng.uniform(0.9, 1.1, size=3)
            contrast = rng.uniform(0.8, 1.2)
            mean = img.mean()
            img = np.clip((img - mean) * contrast + mean * gain, 0.0, 1.0)
        return {'image': torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float(),
                'depth': torch.from_numpy(np.ascontiguousarray(depth))[None].float(),
                'domain': torch.tensor(self.labels[s], dtype=torch.long)}
