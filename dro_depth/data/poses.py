"""Pose helpers for the dataset readers/writers: rotation <-> quaternion and TUM trajectory files.

Quaternions are ``(x, y, z, w)`` (ROS / TUM order), unit norm, with ``w >= 0`` on output.
TUM format: one pose per line ``stamp tx ty tz qx qy qz qw`` (``#`` comments allowed); the pose
is ``T_world_cam`` (here: of the camera optical frame).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` quaternions (x, y, z, w) -> ``(..., 3, 3)`` rotation matrices (normalised first)."""
    q = np.asarray(q, np.float64)
    if q.shape[-1] != 4:
        raise ValueError(f'quaternions must have 4 components (x, y, z, w), got shape {q.shape}')
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(n < 1e-12) or not np.all(np.isfinite(q)):
        raise ValueError('quaternions must be finite and non-zero')
    x, y, z, w = np.moveaxis(q / n, -1, 0)
    R = np.empty(q.shape[:-1] + (3, 3))
    R[..., 0, 0] = 1 - 2 * (y * y + z * z)
    R[..., 0, 1] = 2 * (x * y - z * w)
    R[..., 0, 2] = 2 * (x * z + y * w)
    R[..., 1, 0] = 2 * (x * y + z * w)
    R[..., 1, 1] = 1 - 2 * (x * x + z * z)
    R[..., 1, 2] = 2 * (y * z - x * w)
    R[..., 2, 0] = 2 * (x * z - y * w)
    R[..., 2, 1] = 2 * (y * z + x * w)
    R[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return R


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation matrices -> ``(..., 4)`` unit quaternions (x, y, z, w), ``w >= 0``.

    Uses the numerically stable branch on the largest diagonal term (Shepperd's method).
    """
    R = np.asarray(R, np.float64)
    if R.shape[-2:] != (3, 3):
        raise ValueError(f'rotation matrices must be (..., 3, 3), got {R.shape}')
    flat = R.reshape(-1, 3, 3)
    out = np.empty((len(flat), 4))
    for i, m in enumerate(flat):
        tr = np.trace(m)
        if tr > 0:
            s = 2.0 * np.sqrt(tr + 1.0)
            q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
        elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
            q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
        elif m[1, 1] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
            q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
        else:
            s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
            q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
        q = np.asarray(q)
        q /= np.linalg.norm(q)
        out[i] = -q if q[3] < 0 else q
    return out.reshape(R.shape[:-2] + (4,))


def pose_to_tq(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(4, 4)`` -> translation ``(3,)`` and quaternion ``(4,)`` (x, y, z, w)."""
    T = np.asarray(T, np.float64)
    if T.shape != (4, 4):
        raise ValueError(f'pose must be 4x4, got {T.shape}')
    return T[:3, 3].copy(), matrix_to_quaternion(T[:3, :3])


def tq_to_pose(t: np.ndarray, q: np.ndarray) -> np.ndarray:
    """translation ``(3,)`` and quaternion (x, y, z, w) -> ``(4, 4)``."""
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(q)
    T[:3, 3] = np.asarray(t, np.float64)
    return T


def write_tum(path: str | Path, stamps: np.ndarray, poses: np.ndarray) -> None:
    """Write ``(N,)`` stamps (s) and ``(N, 4, 4)`` poses as a TUM trajectory file."""
    stamps = np.asarray(stamps, np.float64)
    poses = np.asarray(poses, np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(stamps) != len(poses):
        raise ValueError(f'need (N,) stamps and (N, 4, 4) poses, got {stamps.shape} and {poses.shape}')
    q = matrix_to_quaternion(poses[:, :3, :3]) if len(poses) else np.zeros((0, 4))
    with open(path, 'w', encoding='utf-8') as f:
        f.write('# timestamp tx ty tz qx qy qz qw  (T_world_cam of the camera optical frame)\n')
        for s, T, qq in zip(stamps, poses, q):
            t = T[:3, 3]
            f.write(f'{s:.9f} {t[0]:.9f} {t[1]:.9f} {t[2]:.9f} '
                    f'{qq[0]:.12f} {qq[1]:.12f} {qq[2]:.12f} {qq[3]:.12f}\n')


def read_tum(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a TUM trajectory file -> stamps ``(N,)`` and poses ``(N, 4, 4)``."""
    rows = []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            parts = line.replace(',', ' ').split()
            if len(parts) != 8:
                raise ValueError(f'{path}:{lineno}: expected 8 numbers "stamp tx ty tz qx qy qz qw", '
                                 f'got {len(parts)}')
            try:
                rows.append([float(p) for p in parts])
            except ValueError as e:
                raise ValueError(f'{path}:{lineno}: {e}') from None
    data = np.asarray(rows, np.float64).reshape(-1, 8)
    poses = np.tile(np.eye(4), (len(data), 1, 1))
    if len(data):
        poses[:, :3, :3] = quaternion_to_matrix(data[:, 4:8])
        poses[:, :3, 3] = data[:, 1:4]
    return data[:, 0].copy(), poses
