"""Synthetic multi-view sequences with exact depth, poses and intrinsics (mono, stereo, triplets).

Everything is deterministic given the seed. Building blocks:
:func:`~dro_depth.data.scenes.make_scene` (box-world rooms and streets),
:func:`~dro_depth.data.trajectories.make_trajectory` (robot / handheld motion with stops and pans) and
:func:`~dro_depth.data.raycast.render` (vectorised ray casting, one ray per pixel centre).

Conventions (see :mod:`dro_depth.data.sequence`): depth in metres along optical Z, **NaN for sky**
(rays that hit nothing; only outdoor scenes have sky), poses ``T_world_cam`` of the optical frame in
the scene's z-up world frame, stamps ``start_time + i / fps``.

Stereo: rectified pairs share K and orientation; the right camera sits ``baseline`` metres along the
left camera's +x (optical right) axis. The disparity of a left-image pixel is
``d = fx * baseline / depth`` and its match in the right image is at ``u - d``. Triplets put a left
and a right camera at ``-baseline`` and ``+baseline`` from the centre camera; the centre pixel's
match is at ``u + d`` in the left image and ``u - d`` in the right one, with ``d = fx * B / depth``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .raycast import render
from .scenes import SCENE_KINDS, Scene, make_scene
from .sequence import Sequence
from .trajectories import _SPEEDS, Trajectory, make_trajectory

logger = logging.getLogger(__name__)

__all__ = ['default_K', 'make_scene', 'make_trajectory', 'render', 'generate_sequence', 'generate_stereo',
           'generate_triplet', 'StereoSequence', 'TripletSequence', 'Scene', 'Sequence', 'Trajectory',
           'disparity_from_depth', 'DEFAULT_START_TIME', 'benchmark_render']

DEFAULT_START_TIME = 1_700_000_000.0


def default_K(height: int, width: int, hfov_deg: float = 70.0) -> np.ndarray:
    """Square-pixel pinhole intrinsics with the principal point at the image centre.

    Returns:
        ``(3, 3)`` float64, ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2`` (pixel centres at integers).
    """
    if not 1.0 < hfov_deg < 179.0:
        raise ValueError(f'hfov_deg must be in (1, 179), got {hfov_deg}')
    f = 0.5 * width / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def disparity_from_depth(depth: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """``fx * baseline / depth`` (NaN where depth is NaN or <= 0). Shapes preserved, float32."""
    depth = np.asarray(depth, np.float32)
    with np.errstate(divide='ignore', invalid='ignore'):
        disp = np.float32(fx * baseline) / depth
    return np.where(depth > 0, disp, np.float32(np.nan)).astype(np.float32)


def _translate_x(poses: np.ndarray, dx: float) -> np.ndarray:
    offset = np.eye(4)
    offset[0, 3] = dx
    return poses @ offset


def _setup(kind: str, seed: int, n_frames: int, fps: float, motion: str | None, scene: Scene | None,
           speed, start_time: float, traj_kwargs: dict) -> tuple[Scene, Trajectory]:
    if kind not in SCENE_KINDS:
        raise ValueError(f'unknown scene kind {kind!r}; expected one of {SCENE_KINDS}')
    if scene is None:
        if kind == 'outdoor':
            mot = motion or 'robot'
            vmax = (speed or _SPEEDS[('outdoor', mot if mot in ('robot', 'handheld') else 'robot')])[1]
            scene = make_scene('outdoor', seed, street_length=max(250.0, 1.1 * vmax * n_frames / fps + 20.0))
        else:
            scene = make_scene('indoor', seed)
    traj = make_trajectory(scene, n_frames, fps=fps, seed=seed, motion=motion, speed=speed,
                           start_time=start_time,
                           **traj_kwargs)
    return scene, traj


def _render_views(scene: Scene, K: np.ndarray, poses: np.ndarray, height: int, width: int):
    n = len(poses)
    images = np.empty((n, height, width, 3), np.uint8)
    depths = np.empty((n, height, width), np.float32)
    for i in range(n):
        images[i], depths[i] = render(scene, K, poses[i], height, width)
    return images, depths


def _metadata(scene: Scene, traj: Trajectory, fps: float, **extra) -> dict:
    return dict(generator='dro_depth.data.synthetic', kind=scene.kind, seed=scene.seed, motion=traj.motion,
                fps=float(fps), n_boxes=scene.n_boxes, path_clearance=scene.path_clearance,
                light_dir=scene.light_dir.tolist(), ambient=scene.ambient, diffuse=scene.diffuse,
                exposure=scene.exposure, tone_gamma=scene.tone_gamma, sky=scene.sky,
                sky_depth='NaN', segments=list(traj.segments), static=traj.static.tolist(),
                world_frame='z-up (x forward, y left); poses are T_world_cam of the optical frame', **extra)


def generate_sequence(kind: str = 'indoor', seed: int = 0, n_frames: int = 30, height: int = 240,
                      width: int = 320, fps: float = 15.0, motion: str | None = None,
                      K: np.ndarray | None = None,
                      hfov_deg: float = 70.0, speed: tuple[float, float] | None = None,
                      start_time: float = DEFAULT_START_TIME, scene: Scene | None = None,
                      **traj_kwargs) -> Sequence:
    """Render a monocular sequence.

    Args:
        kind: 'indoor' or 'outdoor' (ignored when ``scene`` is given, except for validation).
        seed: seed of scene and trajectory.
        n_frames, height, width, fps: sequence size and rate.
        motion: 'robot' or 'handheld' (default by kind, see :func:`make_trajectory`).
        K: ``(3, 3)`` intrinsics; default :func:`default_K` with ``hfov_deg``.
        speed: (min, max) cruise speed in m/s.
        start_time: stamp of the first frame (seconds).
        scene: reuse a prebuilt scene.
        traj_kwargs: more :func:`make_trajectory` options (stop_prob, turn_prob, stops).

    Returns:
        :class:`Sequence` with images ``(N, H, W, 3)`` uint8, depths ``(N, H, W)`` float32 (NaN = sky),
        poses ``(N, 4, 4)``, K, stamps and metadata (including per-frame ``static`` flags).
    """
    K = default_K(height, width, hfov_deg) if K is None else np.asarray(K, np.float64)
    scene, traj = _setup(kind, seed, n_frames, fps, motion, scene, speed, start_time, traj_kwargs)
    images, depths = _render_views(scene, K, traj.poses, height, width)
    return Sequence(images=images, K=K, stamps=traj.stamps, depths=depths, poses=traj.poses,
                    metadata=_metadata(scene, traj, fps))


@dataclass
class StereoSequence:
    """Rectified stereo sequence: ``right.poses = left.poses @ [I | (baseline, 0, 0)]``.

    Attributes:
        left, right: :class:`Sequence` (same K, stamps).
        disparity: ``(N, H, W)`` float32 left-image disparity ``fx * baseline / left.depths`` (NaN = sky).
        baseline: metres.
    """
    left: Sequence
    right: Sequence
    disparity: np.ndarray
    baseline: float


@dataclass
class TripletSequence:
    """Left-centre-right rig: ``left/right.poses = centre.poses @ [I | (-/+baseline, 0, 0)]``.

    Attributes:
        disparity: ``(N, H, W)`` float32 centre-image disparity ``fx * baseline / centre.depths``; the
            centre pixel ``u`` matches ``u + d`` in the left image and ``u - d`` in the right one.
    """
    left: Sequence
    centre: Sequence
    right: Sequence
    disparity: np.ndarray
    baseline: float


def _check_baseline(scene: Scene, baseline: float, offsets: float) -> None:
    if not baseline > 0:
        raise ValueError(f'baseline must be > 0, got {baseline}')
    if offsets * baseline > scene.path_clearance - 0.15:
        raise ValueError(f'baseline {baseline} m would put a camera within 0.15 m of the geometry '
                         f'(path clearance {scene.path_clearance:.2f} m)')


def generate_stereo(kind: str = 'indoor', seed: int = 0, n_frames: int = 30, height: int = 240,
                    width: int = 320, baseline: float = 0.12, fps: float = 15.0, motion: str | None = None,
                    K: np.ndarray | None = None, hfov_deg: float = 70.0,
                    start_time: float = DEFAULT_START_TIME, scene: Scene | None = None,
                    **traj_kwargs) -> StereoSequence:
    """Render a rectified stereo sequence (see :class:`StereoSequence`). Arguments as
    :func:`generate_sequence`, plus ``baseline`` in metres."""
    K = default_K(height, width, hfov_deg) if K is None else np.asarray(K, np.float64)
    scene, traj = _setup(kind, seed, n_frames, fps, motion, scene, None, start_time, traj_kwargs)
    _check_baseline(scene, baseline, 1.0)
    seqs = []
    for dx in (0.0, baseline):
        poses = _translate_x(traj.poses, dx)
        images, depths = _render_views(scene, K, poses, height, width)
        seqs.append(Sequence(images=images, K=K, stamps=traj.stamps, depths=depths, poses=poses,
                             metadata=_metadata(scene, traj, fps, stereo_offset=dx)))
    disparity = disparity_from_depth(seqs[0].depths, K[0, 0], baseline)
    return StereoSequence(left=seqs[0], right=seqs[1], disparity=disparity, baseline=baseline)


def generate_triplet(kind: str = 'indoor', seed: int = 0, n_frames: int = 30, height: int = 240,
                     width: int = 320, baseline: float = 0.12, fps: float = 15.0, motion: str | None = None,
                     K: np.ndarray | None = None, hfov_deg: float = 70.0,
                     start_time: float = DEFAULT_START_TIME, scene: Scene | None = None,
                     **traj_kwargs) -> TripletSequence:
    """Render a left-centre-right sequence (see :class:`TripletSequence`). Arguments as
    :func:`generate_sequence`, plus ``baseline`` (centre-to-side distance) in metres."""
    K = default_K(height, width, hfov_deg) if K is None else np.asarray(K, np.float64)
    scene, traj = _setup(kind, seed, n_frames, fps, motion, scene, None, start_time, traj_kwargs)
    _check_baseline(scene, baseline, 1.0)
    seqs = []
    for dx in (-baseline, 0.0, baseline):
        poses = _translate_x(traj.poses, dx)
        images, depths = _render_views(scene, K, poses, height, width)
        seqs.append(Sequence(images=images, K=K, stamps=traj.stamps, depths=depths, poses=poses,
                             metadata=_metadata(scene, traj, fps, stereo_offset=dx)))
    return TripletSequence(left=seqs[0], centre=seqs[1], right=seqs[2],
                           disparity=disparity_from_depth(seqs[1].depths, K[0, 0], baseline),
                           baseline=baseline)


def benchmark_render(kind: str = 'indoor', n_frames: int = 30, height: int = 240, width: int = 320,
                     seed: int = 0) -> dict:
    """CPU time of :func:`render` per frame along a trajectory (process time, so other processes on
    the machine inflate it less than wall time).

    Returns:
        ``{'kind', 'height', 'width', 'frames', 'ms_mean', 'ms_median', 'ms_max', 'boxes'}``.
    """
    import time
    scene = make_scene(kind, seed)
    traj = make_trajectory(scene, n_frames, seed=seed)
    K = default_K(height, width)
    render(scene, K, traj.poses[0], height, width)  # warm caches
    times = []
    for T in traj.poses:
        t0 = time.process_time()
        render(scene, K, T, height, width)
        times.append(1000.0 * (time.process_time() - t0))
    return dict(kind=kind, height=height, width=width, frames=n_frames, ms_mean=float(np.mean(times)),
                ms_median=float(np.median(times)), ms_max=float(np.max(times)), boxes=scene.n_boxes)
