"""Pseudo-label folders: a teacher's inverse depth for unlabeled images, written once and reused.

Layout written by :class:`PseudoLabelWriter` (``dro-depth pseudo-label``) and read by
:func:`read_pseudo_labels` / :class:`PseudoLabelDataset` (``model: mono`` training)::

    out/
      index.json              format, teacher description, one entry per image (below)
      images/000000.png       the image the teacher saw (8-bit RGB), so the folder is self-contained
      labels/000000.npy       float32 (H, W) inverse depth, affine-invariant (larger = nearer), NaN invalid
      previews/000000.png     image | colour-mapped label, for inspection

Each ``index.json`` entry: ``id``, ``source`` (bag or folder path), ``frame`` (index in the source),
``stamp_ns`` (the image's stamp), ``image``, ``label``, ``preview`` (paths relative to the folder),
``height``, ``width``. Labels are relative (only their order and ratios of differences mean anything), so
they are used with scale-and-shift-invariant losses, or aligned before use as a depth prior.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, Dict, List, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from dro_depth.errors import DroDepthError

from .dataset import resize_depth, resize_image

__all__ = ['PSEUDO_LABEL_FORMAT', 'PseudoLabelError', 'PseudoLabelWriter', 'read_pseudo_labels',
           'load_pseudo_label', 'PseudoLabelDataset', 'preview_image']

logger = logging.getLogger(__name__)

PSEUDO_LABEL_FORMAT = 'dro_depth.pseudo_labels'


class PseudoLabelError(DroDepthError):
    """A pseudo-label folder is missing, incomplete or inconsistent."""


def preview_image(image: np.ndarray, label: np.ndarray) -> np.ndarray:
    """``uint8 (H, 2W, 3)`` RGB: the image beside its label (turbo colour map, 2-98 % range, invalid black)."""
    valid = np.isfinite(label)
    vis = np.zeros(label.shape + (3,), np.uint8)
    if valid.any():
        lo, hi = np.percentile(label[valid], [2, 98])
        norm = np.clip((label - lo) / max(hi - lo, 1e-9), 0, 1)
        col = cv2.applyColorMap((np.nan_to_num(norm) * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
        vis = np.where(valid[..., None], cv2.cvtColor(col, cv2.COLOR_BGR2RGB), 0).astype(np.uint8)
    return np.concatenate([image, vis], axis=1)


class PseudoLabelWriter:
    """Write a pseudo-label folder (see the module docstring); ``index.json`` is written on :meth:`close`.

    Args:
        out: target folder; must not exist (or be empty) unless ``overwrite``.
        teacher: JSON-serialisable description of the teacher (stored in the index).
    """

    def __init__(self, out: str | Path, teacher: Dict[str, Any], overwrite: bool = False) -> None:
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise PseudoLabelError(f'{self.out} exists and is not a folder')
        if self.out.is_dir() and any(self.out.iterdir()):
            if not overwrite:
                raise PseudoLabelError(f'{self.out} is not empty (pass --overwrite to replace it)')
            shutil.rmtree(self.out)
        for sub in ('images', 'labels', 'previews'):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        self.teacher = dict(teacher)
        self.entries: List[Dict[str, Any]] = []

    def add(self, image: np.ndarray, label: np.ndarray, source: str, frame: int, stamp_ns: int) -> Dict[str, Any]:
        """Store one image (uint8 ``(H, W, 3)`` RGB) and its label (``(H, W)`` inverse depth)."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise PseudoLabelError(f'image must be uint8 (H, W, 3), got {image.dtype} {image.shape}')
        if label.shape != image.shape[:2]:
            raise PseudoLabelError(f'label {label.shape} does not match image {image.shape[:2]}')
        i = len(self.entries)
        entry = {'id': i, 'source': str(source), 'frame': int(frame), 'stamp_ns': int(stamp_ns),
                 'image': f'images/{i:06d}.png', 'label': f'labels/{i:06d}.npy',
                 'preview': f'previews/{i:06d}.png', 'height': int(image.shape[0]), 'width': int(image.shape[1])}
        cv2.imwrite(str(self.out / entry['image']), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        np.save(self.out / entry['label'], label.astype(np.float32))
        cv2.imwrite(str(self.out / entry['preview']), cv2.cvtColor(preview_image(image, label), cv2.COLOR_RGB2BGR))
        self.entries.append(entry)
        return entry

    def close(self) -> Path:
        """Write ``index.json``; returns its path."""
        index = {'format': PSEUDO_LABEL_FORMAT, 'version': 1, 'teacher': self.teacher,
                 'label': 'inverse depth, affine-invariant (larger = nearer), float32, NaN invalid',
                 'entries': self.entries}
        path = self.out / 'index.json'
        tmp = path.with_suffix('.json.tmp')
        tmp.write_text(json.dumps(index, indent=1))
        tmp.replace(path)
        return path

    def __enter__(self) -> 'PseudoLabelWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_pseudo_labels(path: str | Path) -> Dict[str, Any]:
    """The parsed ``index.json`` of a pseudo-label folder (entries checked for their files).

    Raises:
        PseudoLabelError: no folder, no or a foreign index, missing files.
    """
    root = Path(path)
    index_path = root / 'index.json'
    if not index_path.is_file():
        raise PseudoLabelError(f'{root} is not a pseudo-label folder (no index.json)')
    try:
        index = json.loads(index_path.read_text())
    except json.JSONDecodeError as exc:
        raise PseudoLabelError(f'{index_path}: not valid JSON ({exc})') from exc
    if not isinstance(index, dict) or index.get('format') != PSEUDO_LABEL_FORMAT:
        raise PseudoLabelError(f'{index_path}: not a pseudo-label index (format '
                               f'{index.get("format") if isinstance(index, dict) else None!r})')
    for e in index.get('entries', []):
        for key in ('image', 'label'):
            if not (root / e[key]).is_file():
                raise PseudoLabelError(f'{root}: entry {e["id"]} lists {e[key]}, which is missing')
    return index


def load_pseudo_label(root: str | Path, entry: Dict[str, Any]) -> tuple:
    """``(image uint8 (H, W, 3) RGB, label float32 (H, W))`` of one index entry."""
    root = Path(root)
    img = cv2.imread(str(root / entry['image']), cv2.IMREAD_COLOR)
    if img is None:
        raise PseudoLabelError(f'cannot read {root / entry["image"]}')
    label = np.load(root / entry['label'], allow_pickle=False).astype(np.float32)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), label


class PseudoLabelDataset(Dataset):
    """Samples ``{'image' [3, H, W] in [0, 1], 'label' [1, H, W] (NaN invalid)}`` of pseudo-label folders,
    resized to the network size (image area, label nearest), with a seeded random horizontal flip when
    ``augment``. Images are decoded once and kept in memory (small folders)."""

    def __init__(self, folders: Sequence[str | Path], height: int, width: int, augment: bool = False,
                 seed: int = 0) -> None:
        self.items: List[tuple] = []
        for folder in folders:
            index = read_pseudo_labels(folder)
            for e in index['entries']:
                img, label = load_pseudo_label(folder, e)
                self.items.append((resize_image(img, height, width),
                                   resize_depth(label, height, width)))
        if not self.items:
            raise PseudoLabelError(f'no pseudo-labeled images in {list(map(str, folders))}')
        self.augment, self.seed, self._calls = augment, seed, 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item: int) -> dict:
        img, label = self.items[item]
        img = img.astype(np.float32) / 255.0
        if self.augment:
            self._calls += 1
            if np.random.default_rng((self.seed, item, self._calls)).random() < 0.5:
                img, label = img[:, ::-1], label[:, ::-1]
        return {'image': torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float(),
                'label': torch.from_numpy(np.ascontiguousarray(label))[None].float()}

