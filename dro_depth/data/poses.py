"""Pose helpers for the dataset readers/writers: rotation <-> quaternion and TUM trajectory files.

Quaternions are ``(x, y, z, w)`` (ROS / TUM order), unit norm, with ``w >= 0`` on output.
TUM format: one pose per line ``stamp tx ty tz qx qy qz qw`` (``#`` comments allowed); the pose
is ``T_world_cam`` (here: of the camera optical frame).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dro_depth.geometry import matrix_to_quaternion, quaternion_to_matrix

__all__ = ['matrix_to_quaternion', 'quaternion_to_matrix', 'pose_to_tq', 'tq_to_pose', 'write_tum', 'read_tum']


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
