"""Robot-like and handheld-like camera trajectories along a scene's collision-free path.

A trajectory is a schedule of segments:

- ``move``: the base advances along :attr:`Scene.path` with a smooth speed profile (ramps at both ends);
- ``stop``: nothing moves, shake included, so those frames have *exactly* the same pose (static frames);
- ``turn``: the base stays in place and the camera pans (yaw) out to +-30..80 degrees and back.

On top of the path heading come small shakes (roll / pitch / yaw and position jitter, smooth sums of
sinusoids) whose clock only runs while moving or turning, plus a walking bob for ``handheld``.

Frames: world = scene frame (REP 103: x forward, y left, z up). The base frame has x forward, y left,
z up with yaw about z, then pitch about y (positive pitch tilts the view *down*), then roll about x
(``R = Rz(yaw) Ry(pitch) Rx(roll)``). Poses are of the camera **optical** frame (x right, y down,
z forward): ``T_world_cam = [R_world_base @ R_BASE_OPTICAL, p]``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .scenes import Scene

logger = logging.getLogger(__name__)

MOTIONS = ('robot', 'handheld')
# columns: optical x (right) = -y_base, optical y (down) = -z_base, optical z (forward) = x_base
R_BASE_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])

_SPEEDS = {('indoor', 'robot'): (0.3, 0.7), ('indoor', 'handheld'): (0.5, 1.1),
           ('outdoor', 'robot'): (2.0, 6.0), ('outdoor', 'handheld'): (1.0, 1.6)}
# (roll/pitch deg, yaw deg, position m, shake freq band Hz, look-around deg, bob m)
_SHAKE = {'robot': (0.3, 0.2, 0.003, (1.0, 4.0), 0.0, 0.002),
          'handheld': (1.5, 1.5, 0.015, (0.3, 2.0), 15.0, 0.015)}


@dataclass
class Trajectory:
    """Camera trajectory.

    Attributes:
        poses: ``(N, 4, 4)`` float64 T_world_cam of the camera optical frame.
        stamps: ``(N,)`` float64 seconds.
        segments: ``(kind, first_frame, last_frame_exclusive)`` of each segment.
        motion: 'robot' or 'handheld'.
        arc_length: ``(N,)`` travelled distance along the path in metres.
    """
    poses: np.ndarray
    stamps: np.ndarray
    segments: list[tuple[str, int, int]] = field(default_factory=list)
    motion: str = 'robot'
    arc_length: np.ndarray | None = None

    @property
    def static(self) -> np.ndarray:
        """``(N,)`` bool: frame pose is exactly equal to the previous frame's (first frame False)."""
        same = np.all(self.poses[1:] == self.poses[:-1], axis=(1, 2))
        return np.concatenate([[False], same])


def rotation_zyx(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """``Rz(yaw) @ Ry(pitch) @ Rx(roll)`` for ``(N,)`` angles in radians -> ``(N, 3, 3)``."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    R = np.empty(np.shape(yaw) + (3, 3))
    R[..., 0, 0] = cy * cp
    R[..., 0, 1] = cy * sp * sr - sy * cr
    R[..., 0, 2] = cy * sp * cr + sy * sr
    R[..., 1, 0] = sy * cp
    R[..., 1, 1] = sy * sp * sr + cy * cr
    R[..., 1, 2] = sy * sp * cr - cy * sr
    R[..., 2, 0] = -sp
    R[..., 2, 1] = cp * sr
    R[..., 2, 2] = cp * cr
    return R


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, amp: float, band: tuple[float, float],
                  k: int = 4) -> np.ndarray:
    """Smooth zero-mean random signal of ``t``: sum of ``k`` sinusoids, peak ``<= amp``."""
    freq = rng.uniform(band[0], band[1], k)
    phase = rng.uniform(0, 2 * np.pi, k)
    w = rng.uniform(0.5, 1.0, k)
    w = w / w.sum()
    return amp * (w[None] * np.sin(2 * np.pi * freq[None] * t[:, None] + phase[None])).sum(1)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _schedule(rng: np.random.Generator, duration: float, v_range: tuple[float, float], stop_prob: float,
              turn_prob: float, force_stop: bool, force_turn: bool) -> list[tuple[str, float, float, float]]:
    """Segments ``(kind, t_start, t_end, param)`` covering ``[0, duration]``; param = speed or pan angle.

    With ``force_stop`` the second segment is a stop; with ``force_turn`` the fourth (second without a
    forced stop) is a pan, and the moves before them are short (1-2 s). The schedule does not depend on
    ``duration`` other than where it is cut, so a shorter sequence is a prefix of a longer one.
    """
    forced = {}
    if force_stop:
        forced[1] = 'stop'
    if force_turn:
        forced[3 if force_stop else 1] = 'turn'
    last_forced = max(forced, default=-1)
    segs, t = [], 0.0
    while t <= duration:
        r = rng.random()
        n = len(segs)
        if n in forced:
            kind = forced[n]
        elif n < last_forced or n == 0:
            kind = 'move'
        elif segs[-1][0] == 'move' and r < stop_prob:
            kind = 'stop'
        elif segs[-1][0] == 'move' and r < stop_prob + turn_prob:
            kind = 'turn'
        else:
            kind = 'move'
        if kind == 'move':
            length, param = rng.uniform(2.0, 5.0), rng.uniform(*v_range)
            if n < last_forced:
                length = 1.0 + (length - 2.0) / 3.0  # 1..2 s
        elif kind == 'stop':
            length, param = rng.uniform(0.6, 1.5), 0.0
        else:
            length, param = rng.uniform(1.5, 3.0), np.radians(rng.uniform(30, 80)) * rng.choice([-1, 1])
        segs.append((kind, t, t + length, float(param)))
        t += length
    return segs


def make_trajectory(scene: Scene, n_frames: int, fps: float = 15.0, seed: int = 0, motion: str | None = None,
                    speed: tuple[float, float] | None = None, stop_prob: float = 0.3, turn_prob: float = 0.25,
                    start_time: float = 0.0, stops: bool = True, turns: bool = True) -> Trajectory:
    """A collision-free trajectory through ``scene``.

    Args:
        scene: the scene whose :attr:`Scene.path` the camera follows.
        n_frames: number of frames (>= 1).
        fps: frame rate; stamps are ``start_time + i / fps``.
        seed: random seed (trajectory randomness is independent of the scene's).
        motion: 'robot' (smooth, tiny vibration, in-place pans) or 'handheld' (shake, bob, looking
            around); default 'handheld' indoors and 'robot' outdoors.
        speed: (min, max) cruise speed in m/s; default by scene kind and motion.
        stop_prob, turn_prob: probability that a move segment is followed by a stop / an in-place pan.
        start_time: stamp of the first frame in seconds.
        stops: the second segment is a stop (starting 1-2 s in), so sequences longer than ~3 s always
            contain static frames.
        turns: an in-place pan follows early on (the fourth segment, within ~7 s), so yaw changes are
            guaranteed even on straight paths.

    A trajectory with fewer frames is a prefix of one with more (same scene, seed and options), as long
    as an open path is long enough for the longer one.

    Returns:
        :class:`Trajectory`.
    """
    if int(n_frames) < 1:
        raise ValueError(f'n_frames must be >= 1, got {n_frames}')
    if not fps > 0:
        raise ValueError(f'fps must be > 0, got {fps}')
    motion = motion or ('handheld' if scene.kind == 'indoor' else 'robot')
    if motion not in MOTIONS:
        raise ValueError(f'unknown motion {motion!r}; expected one of {MOTIONS}')
    n = int(n_frames)
    rng = np.random.default_rng([seed, 3])  # shake, height, tilt
    rng_schedule = np.random.default_rng([seed, 4])
    v_range = tuple(speed) if speed is not None else _SPEEDS[(scene.kind, motion)]
    if len(v_range) != 2 or not 0 < v_range[0] <= v_range[1]:
        raise ValueError(f'speed must be (min, max) with 0 < min <= max, got {speed}')
    dt = 1.0 / fps
    times = np.arange(n) * dt
    duration = float(times[-1])
    segs = _schedule(rng_schedule, duration, v_range, stop_prob, turn_prob, force_stop=stops,
                     force_turn=turns)

    seg_idx = np.searchsorted([s[1] for s in segs], times, side='right') - 1
    v = np.zeros(n)
    active = np.zeros(n, bool)
    pan = np.zeros(n)
    for k, (kind, t0, t1, param) in enumerate(segs):
        sel = seg_idx == k
        u = times[sel] - t0
        if kind == 'move':
            ramp = min(0.6, 0.3 * (t1 - t0))
            v[sel] = param * _smoothstep(u / ramp) * _smoothstep((t1 - t0 - u) / ramp)
            active[sel] = True
        elif kind == 'turn':
            pan[sel] = param * 0.5 * (1 - np.cos(2 * np.pi * u / (t1 - t0)))
            active[sel] = True
    s = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) * dt)])
    s[~active] = np.maximum.accumulate(s)[~active]
    # the shake clock only runs while moving or turning, so stop frames are exactly static
    tau = np.concatenate([[0.0], np.cumsum(active[1:] * dt)])
    if not scene.path.closed:
        room = scene.path.length - 1.0
        if s[-1] > room:
            logger.info('trajectory slowed down by %.2fx to stay on the %.0f m path', s[-1] / room,
                        scene.path.length)
            s *= room / s[-1]
        s0 = 0.0
    else:
        s0 = rng.uniform(0, scene.path.length)
    arc = s.copy()
    s = s + s0
    tilt, yaw_amp, pos_amp, band, look, bob = _SHAKE[motion]
    pitch0 = np.radians(rng.uniform(-3, 10) if scene.kind == 'indoor' else rng.uniform(-3, 5))
    height = rng.uniform(*scene.camera_height)
    xy = scene.path.position(s)
    heading = scene.path.heading(s)
    yaw = heading + pan + np.radians(_smooth_noise(rng, tau, yaw_amp, band))
    if look > 0:
        yaw += np.radians(_smooth_noise(rng, tau, look, (0.03, 0.15), k=3))
    pitch = pitch0 + np.radians(_smooth_noise(rng, tau, tilt, band))
    roll = np.radians(_smooth_noise(rng, tau, tilt, band))
    lateral = _smooth_noise(rng, tau, pos_amp, band)
    z = height + _smooth_noise(rng, tau, pos_amp, band) + bob * np.sin(2 * np.pi * arc / 0.7)
    pos = np.stack([xy[:, 0] - np.sin(heading) * lateral, xy[:, 1] + np.cos(heading) * lateral, z], -1)
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = rotation_zyx(yaw, pitch, roll) @ R_BASE_OPTICAL
    poses[:, :3, 3] = pos
    bounds = np.searchsorted(times, [sg[1] for sg in segs] + [np.inf])
    segments = [(sg[0], int(bounds[k]), int(min(bounds[k + 1], n))) for k, sg in enumerate(segs)
                if bounds[k] < n]
    return Trajectory(poses=poses, stamps=start_time + times, segments=segments, motion=motion,
                      arc_length=arc)
