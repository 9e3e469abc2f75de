"""Plain-folder datasets: write a :class:`Sequence` to disk and read image folders back.

Layout written by :func:`write_folder` (and understood by :func:`read_folder`)::

    root/
      rgb/000000.png ...       8-bit RGB images
      depth/000000.npy ...     float32 metres, NaN invalid   (depth_format='npy')
      depth/000000.png ...     uint16 millimetres, 0 invalid (depth_format='png')
      timestamps.txt           one stamp (seconds) per image
      poses.txt                TUM 'stamp tx ty tz qx qy qz qw', T_world_cam of the optical frame
      intrinsics.txt           3x3 K (also accepted: one line 'fx fy cx cy')
      intrinsics.yaml          width, height, K (9 values, row major), fx, fy, cx, cy, frame_id

:func:`read_folder` also accepts images directly in ``root`` or in ``images/``/``image/``, intrinsics as a
ROS camera calibration yaml (``camera_matrix: {data: [...]}``), and stamps from ``timestamps.txt``, from
``poses.txt``, from numeric file names (e.g. ``1305031102.175304.png``) or from ``fps``.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import yaml

from dro_depth.errors import DroDepthError
from .image_encoding import depth_to_metres, metres_to_depth16
from .poses import read_tum, write_tum
from .sequence import DEFAULT_FRAME_ID, Frame, Sequence, stamp_to_ns

logger = logging.getLogger(__name__)

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.tif', '.tiff')
DEPTH_FORMATS = ('npy', 'png')


class FolderError(DroDepthError):
    """A dataset folder is missing pieces or holds inconsistent data."""


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', p.name)]


def write_folder(seq: Sequence, path: str | Path, depth_format: str = 'npy', overwrite: bool = False) -> Path:
    """Write ``seq`` in the layout above (atomically: a temporary folder renamed into place).

    Args:
        seq: the sequence (depth and poses written when present).
        path: target folder; must not exist unless ``overwrite``.
        depth_format: 'npy' (float32 metres, exact) or 'png' (uint16 millimetres, 0 = invalid).
    """
    if depth_format not in DEPTH_FORMATS:
        raise ValueError(f'depth_format must be one of {DEPTH_FORMATS}, got {depth_format!r}')
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f'{path} already exists (pass overwrite=True to replace it)')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f'.{path.name}.tmp-{uuid.uuid4().hex[:8]}'
    try:
        (tmp / 'rgb').mkdir(parents=True)
        n = len(seq)
        width = max(6, len(str(n - 1)))
        for i in range(n):
            name = f'{i:0{width}d}'
            bgr = cv2.cvtColor(seq.images[i], cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(tmp / 'rgb' / f'{name}.png'), bgr):
                raise OSError(f'could not write {tmp / "rgb" / name}.png')
            if seq.depths is not None:
                (tmp / 'depth').mkdir(exist_ok=True)
                if depth_format == 'npy':
                    np.save(tmp / 'depth' / f'{name}.npy', seq.depths[i].astype(np.float32))
                else:
                    cv2.imwrite(str(tmp / 'depth' / f'{name}.png'), metres_to_depth16(seq.depths[i]))
        np.savetxt(tmp / 'timestamps.txt', seq.stamps, fmt='%.9f')
        if seq.poses is not None:
            write_tum(tmp / 'poses.txt', seq.stamps, seq.poses)
        np.savetxt(tmp / 'intrinsics.txt', seq.K, fmt='%.10g')
        K = seq.K
        info = dict(width=seq.width, height=seq.height, K=[float(v) for v in K.ravel()], fx=float(K[0, 0]),
                    fy=float(K[1, 1]), cx=float(K[0, 2]), cy=float(K[1, 2]), frame_id=seq.frame_id,
                    distortion_model='plumb_bob', D=[0.0] * 5,
                    depth='none' if seq.depths is None else (
                        'float32 metres, NaN invalid' if depth_format == 'npy'
                        else 'uint16 millimetres, 0 invalid (also beyond 65.535 m)'))
        with open(tmp / 'intrinsics.yaml', 'w', encoding='utf-8') as f:
            yaml.safe_dump(info, f, sort_keys=False)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _read_K(root: Path) -> tuple[np.ndarray | None, str]:
    yml = root / 'intrinsics.yaml'
    for cand in (yml, root / 'camera_info.yaml', root / 'calibration.yaml'):
        if cand.exists():
            with open(cand, encoding='utf-8') as f:
                data = yaml.safe_load(f) or {}
            frame_id = str(data.get('frame_id', DEFAULT_FRAME_ID))
            if 'K' in data or 'k' in data:
                return np.asarray(data.get('K', data.get('k')), np.float64).reshape(3, 3), frame_id
            if isinstance(data.get('camera_matrix'), dict):
                return np.asarray(data['camera_matrix']['data'], np.float64).reshape(3, 3), frame_id
            if all(k in data for k in ('fx', 'fy', 'cx', 'cy')):
                K = np.array([[data['fx'], 0, data['cx']], [0, data['fy'], data['cy']], [0, 0, 1]], float)
                return K, frame_id
            raise FolderError(f'{cand} has no K, camera_matrix or fx/fy/cx/cy')
    txt = root / 'intrinsics.txt'
    if txt.exists():
        vals = np.loadtxt(txt, dtype=np.float64, comments='#').ravel()
        if vals.size == 9:
            return vals.reshape(3, 3), DEFAULT_FRAME_ID
        if vals.size == 4:
            fx, fy, cx, cy = vals
            return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]), DEFAULT_FRAME_ID
        raise FolderError(f'{txt} must hold a 3x3 matrix or "fx fy cx cy", found {vals.size} numbers')
    return None, DEFAULT_FRAME_ID


def _image_dir(root: Path) -> Path:
    for sub in ('rgb', 'images', 'image'):
        if (root / sub).is_dir():
            return root / sub
    return root


def read_folder(path: str | Path, K: np.ndarray | None = None, fps: float | None = None,
                load_depth: bool = True) -> Iterator[Frame]:
    """Iterate the frames of an image folder (see the module docstring for the layout); the folder is
    checked when called, images are loaded lazily.

    Args:
        path: dataset folder.
        K: ``(3, 3)`` intrinsics overriding the folder's.
        fps: frame rate for stamps when the folder has no timestamps (default 30 Hz then).
        load_depth: read ``depth/`` files with the images' stems when present.

    Raises:
        FolderError: missing folder, no images, no intrinsics, inconsistent counts.
    """
    root = Path(path)
    if not root.is_dir():
        raise FolderError(f'dataset folder {root} does not exist')
    img_dir = _image_dir(root)
    files = sorted((p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS), key=_natural_key)
    if not files:
        raise FolderError(f'no images ({", ".join(IMAGE_EXTS)}) in {img_dir}')
    frame_id = DEFAULT_FRAME_ID
    if K is None:
        K, frame_id = _read_K(root)
        if K is None:
            raise FolderError(f'no intrinsics in {root}: add intrinsics.txt / intrinsics.yaml or pass K')
    K = np.asarray(K, np.float64)
    if K.shape != (3, 3):
        raise FolderError(f'K must be 3x3, got {K.shape}')
    n = len(files)
    stamps = None
    pose_stamps, poses = (read_tum(root / 'poses.txt') if (root / 'poses.txt').exists() else (None, None))
    if (root / 'timestamps.txt').exists():
        stamps = np.loadtxt(root / 'timestamps.txt', dtype=np.float64, comments='#', ndmin=1)
        if stamps.shape != (n,):
            raise FolderError(f'{root / "timestamps.txt"} has {stamps.size} stamps for {n} images')
    elif pose_stamps is not None and len(pose_stamps) == n:
        stamps = pose_stamps
    else:
        try:
            named = np.array([float(p.stem) for p in files])
            if all('.' in p.stem for p in files) and np.all(np.diff(named) > 0):
                stamps = named
        except ValueError:
            pass
    if stamps is None:
        rate = float(fps or 30.0)
        logger.info('no timestamps in %s; using %g Hz', root, rate)
        stamps = np.arange(n) / rate
    if poses is not None:
        if len(poses) == n:
            pose_of = list(poses)
        else:  # pair by stamp (microsecond precision)
            table = {round(float(s), 6): T for s, T in zip(pose_stamps, poses)}
            pose_of = [table.get(round(float(s), 6)) for s in stamps]
            if all(p is None for p in pose_of):
                raise FolderError(f'{root / "poses.txt"}: {len(poses)} poses match none of the '
                                  f'{n} image stamps')
    else:
        pose_of = [None] * n
    return _folder_frames(root / 'depth', files, stamps, pose_of, K, frame_id, load_depth)


def _folder_frames(depth_dir: Path, files: list[Path], stamps: np.ndarray, pose_of: list, K: np.ndarray,
                   frame_id: str, load_depth: bool) -> Iterator[Frame]:
    for i, f in enumerate(files):
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise FolderError(f'cannot read image {f}')
        depth = None
        if load_depth and depth_dir.is_dir():
            if (depth_dir / f'{f.stem}.npy').exists():
                depth = np.load(depth_dir / f'{f.stem}.npy', allow_pickle=False).astype(np.float32)
            elif (depth_dir / f'{f.stem}.png').exists():
                raw = cv2.imread(str(depth_dir / f'{f.stem}.png'), cv2.IMREAD_UNCHANGED)
                if raw is None or raw.dtype != np.uint16:
                    raise FolderError(f'depth {depth_dir / f.stem}.png must be a 16-bit PNG in millimetres')
                depth = depth_to_metres(raw, '16UC1')
            if depth is not None and depth.shape != img.shape[:2]:
                raise FolderError(f'depth for {f.name} is {depth.shape}, image is {img.shape[:2]}')
        yield Frame(index=i, stamp=float(stamps[i]), stamp_ns=stamp_to_ns(float(stamps[i])),
                    image=cv2.cvtColor(img, cv2.COLOR_BGR2RGB), K=K.copy(), depth=depth,
                    pose=None if pose_of[i] is None else np.asarray(pose_of[i]).copy(), frame_id=frame_id,
                    encoding=f.suffix.lower().lstrip('.'))


def read_folder_sequence(path: str | Path, **kwargs) -> Sequence:
    """All frames of a folder stacked into a :class:`Sequence` (arguments as :func:`read_folder`)."""
    return Sequence.from_frames(list(read_folder(path, **kwargs)), metadata={'source': str(path)})
