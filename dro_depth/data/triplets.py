"""Stereo training triplets (left, centre, right) with proxy disparity and an AO-like confidence.

Two sources, one sample format (see :class:`TripletSample`):

* :func:`synthetic_triplets` renders them with :func:`dro_depth.data.synthetic.generate_triplet`;
  the confidence plays the role of NeRF-Supervised's ambient-occlusion channel: 1 where the render is
  reliable, lower at depth edges and occlusions, 0 for sky.
* :class:`NSTripletDataset` reads the NeRF-Supervised dataset layout, or triplets rendered with any NeRF
  tool into it: a list file with lines ``left center right disp ao`` (paths relative to the list's
  folder), disparity as 16-bit PNG / 64 aligned to the centre view, AO as 16-bit PNG / 65536.

The network input is (centre, right); the centre pixel ``x`` matches ``x + d`` in the left image and
``x - d`` in the right one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ['TripletSample', 'render_confidence', 'synthetic_triplets', 'NSTripletDataset',
           'write_ns_triplet', 'DISP_SCALE', 'AO_SCALE']

DISP_SCALE = 64.0
AO_SCALE = 65536.0


@dataclass
class TripletSample:
    """One training triplet.

    Attributes:
        left, centre, right: float32 (3, H, W) RGB 0..255.
        disparity: float32 (1, H, W) centre-view disparity in pixels, 0 where unknown.
        ao: float32 (1, H, W) confidence in [0, 1].
    """

    left: torch.Tensor
    centre: torch.Tensor
    right: torch.Tensor
    disparity: torch.Tensor
    ao: torch.Tensor


def _occluded(disp_centre: np.ndarray, disp_side: np.ndarray, sign: float, tol: float = 0.5) -> np.ndarray:
    """Centre pixels whose match ``x + sign*d`` in a side view lies on nearer geometry (or outside)."""
    h, w = disp_centre.shape
    xs = np.arange(w)[None, :] + sign * np.nan_to_num(disp_centre)
    xi = np.rint(xs).astype(int)
    outside = (xi < 0) | (xi >= w)
    side = np.take_along_axis(np.nan_to_num(disp_side), np.clip(xi, 0, w - 1), axis=1)
    return outside | (side > np.nan_to_num(disp_centre) + tol)


def render_confidence(disparity: np.ndarray, disp_left: np.ndarray | None = None,
                      disp_right: np.ndarray | None = None, edge_scale: float = 1.0) -> np.ndarray:
    """AO-like confidence of a rendered centre view.

    Args:
        disparity: float (H, W) centre disparity, NaN where the render has no surface (sky, far).
        disp_left, disp_right: optional float (H, W) disparities of the side views (for occlusions).
        edge_scale: disparity jump (px) at which the edge term halves the confidence.

    Returns:
        float32 (H, W) in [0, 1]: 0 for sky; ``1 / (1 + jump / edge_scale)`` near disparity edges (3x3
        max jump); x 0.5 where the pixel is occluded in one side view, 0 in both.
    """
    d = np.asarray(disparity, np.float32)
    valid = np.isfinite(d) & (d > 0)
    dz = np.where(valid, d, 0.0)
    pad = np.pad(dz, 1, mode='edge')
    h, w = d.shape
    jump = np.zeros_like(dz)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            jump = np.maximum(jump, np.abs(pad[dy:dy + h, dx:dx + w] - dz))
    conf = 1.0 / (1.0 + jump / edge_scale)
    if disp_left is not None and disp_right is not None:
        occ = _occluded(d, disp_left, +1.0).astype(np.float32) + _occluded(d, disp_right, -1.0)
        conf = conf * (1.0 - 0.5 * occ)
    return np.where(valid, conf, 0.0).astype(np.float32)


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()


def synthetic_triplets(n_scenes: int = 4, frames_per_scene: int = 4, height: int = 96, width: int = 128,
                       baseline: float = 0.12, seed: int = 0, kinds: tuple[str, ...] = ('indoor', 'outdoor')
                       ) -> Iterator[TripletSample]:
    """Render triplets from ``n_scenes`` synthetic scenes (different seeds and kinds).

    Yields:
        :class:`TripletSample` per frame; disparity 0 (and AO 0) where the centre sees sky.
    """
    from dro_depth.data.synthetic import disparity_from_depth, generate_triplet
    for s in range(n_scenes):
        kind = kinds[s % len(kinds)]
        trip = generate_triplet(kind, seed=seed + s, n_frames=frames_per_scene, height=height, width=width,
                                baseline=baseline)
        fx = float(trip.centre.K[0, 0])
        for i in range(frames_per_scene):
            disp = trip.disparity[i]
            ao = render_confidence(disp, disparity_from_depth(trip.left.depths[i], fx, baseline),
                                   disparity_from_depth(trip.right.depths[i], fx, baseline))
            yield TripletSample(left=_chw(trip.left.images[i]), centre=_chw(trip.centre.images[i]),
                                right=_chw(trip.right.images[i]),
                                disparity=torch.from_numpy(np.nan_to_num(disp, nan=0.0))[None].float(),
                                ao=torch.from_numpy(ao)[None])


def write_ns_triplet(root: str | Path, name: str, sample: TripletSample) -> str:
    """Write one sample in the NS layout under ``root/name/`` and return its list line.

    Images as 8-bit PNG, disparity as 16-bit PNG x64 (so at most 1023.98 px), AO as 16-bit PNG x65536
    (clipped to 65535).
    """
    import cv2
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for view in ('left', 'center', 'right'):
        img = getattr(sample, 'centre' if view == 'center' else view).permute(1, 2, 0).numpy()
        path = folder / f'{view}.png'
        cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8)[..., ::-1])
        paths.append(path)
    disp = np.clip(np.rint(sample.disparity[0].numpy() * DISP_SCALE), 0, 65535).astype(np.uint16)
    ao = np.clip(np.rint(sample.ao[0].numpy() * AO_SCALE), 0, 65535).astype(np.uint16)
    cv2.imwrite(str(folder / 'disp.png'), disp)
    cv2.imwrite(str(folder / 'ao.png'), ao)
    paths += [folder / 'disp.png', folder / 'ao.png']
    return ' '.join(str(p.relative_to(root)) for p in paths)


class NSTripletDataset(torch.utils.data.Dataset):
    """NeRF-Supervised triplets from a list file (``trainingQ.txt`` style).

    Args:
        list_file: lines ``left center right disp ao``, paths relative to the list file's folder.
        ao_threshold: disparity is zeroed where AO <= this (NS loader, default 0.5), also where it is
            not finite or above ``max_disparity``.
        max_disparity: pixels.
        crop: optional (h, w) random crop (same window for all views).
        seed: crop RNG seed.

    Raises:
        FileNotFoundError: the list or a listed file is missing. ValueError: a malformed line.
    """

    def __init__(self, list_file: str | Path, ao_threshold: float = 0.5, max_disparity: float = 512.0,
                 crop: tuple[int, int] | None = None, seed: int = 0) -> None:
        self.list_file = Path(list_file)
        root = self.list_file.parent
        self.items: list[list[Path]] = []
        for n, line in enumerate(self.list_file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 5:
                raise ValueError(f'{self.list_file}:{n}: expected 5 paths "left center right disp ao", '
                                 f'got {len(parts)}')
            self.items.append([root / p for p in parts])
        self.ao_threshold = ao_threshold
        self.max_disparity = max_disparity
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    @staticmethod
    def _read(path: Path, flags: int) -> np.ndarray:
        import cv2
        img = cv2.imread(str(path), flags)
        if img is None:
            raise FileNotFoundError(f'cannot read {path}')
        return img

    def __getitem__(self, i: int) -> TripletSample:
        import cv2
        left_p, centre_p, right_p, disp_p, ao_p = self.items[i]
        rgb = [self._read(p, cv2.IMREAD_COLOR)[..., ::-1] for p in (left_p, centre_p, right_p)]
        disp = self._read(disp_p, cv2.IMREAD_UNCHANGED).astype(np.float32) / DISP_SCALE
        ao = self._read(ao_p, cv2.IMREAD_UNCHANGED).astype(np.float32) / AO_SCALE
        bad = (ao <= self.ao_threshold) | ~np.isfinite(disp) | (disp > self.max_disparity)
        disp = np.where(bad, 0.0, disp).astype(np.float32)
        arrays = rgb + [disp[..., None], ao[..., None]]
        if self.crop is not None:
            arrays = self._random_crop(arrays)
        t = [_chw(a) for a in arrays]
        return TripletSample(left=t[0], centre=t[1], right=t[2], disparity=t[3], ao=t[4])

    def _random_crop(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        h, w = arrays[0].shape[:2]
        ch, cw = min(self.crop[0], h), min(self.crop[1], w)
        y = int(self.rng.integers(0, h - ch + 1))
        x = int(self.rng.integers(0, w - cw + 1))
        return [a[y:y + ch, x:x + cw] for a in arrays]
