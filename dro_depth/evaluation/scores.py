"""Depth and pose evaluation metrics (numpy; pose metrics through the ``evo`` package).

Depth (Eigen et al. / monodepth conventions), over pixels whose ground truth is finite and inside
``(min_depth, max_depth)``:

- ``abs_rel = mean(|d - d*| / d*)``, ``sq_rel = mean((d - d*)^2 / d*)``,
- ``rmse = sqrt(mean((d - d*)^2))``, ``rmse_log = sqrt(mean((log d - log d*)^2))``,
- ``a1, a2, a3`` = fraction with ``max(d / d*, d* / d) < 1.25, 1.25^2, 1.25^3``.

``median_scaling`` multiplies the prediction by ``median(gt) / median(pred)`` per frame (scale-free
monocular evaluation); predictions are then clamped to ``[min_depth, max_depth]``. Predictions that are
not finite or not positive are excluded and reported through ``coverage``.

Pose: ATE (absolute trajectory error of positions after SE(3) / Sim(3) / scale-only / no alignment),
RPE (relative pose error over a frame or distance delta), and trajectory length error. Poses are
``(N, 4, 4)`` ``T_world_cam`` arrays; stamps are optional (index association when omitted).
"""
from __future__ import annotations

import contextlib
import logging
import warnings

import numpy as np

from dro_depth.errors import DroDepthError

logger = logging.getLogger(__name__)

DEPTH_KEYS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2', 'a3')
ALIGNMENTS = ('none', 'origin', 'se3', 'sim3', 'scale')
STAT_KEYS = ('rmse', 'mean', 'median', 'std', 'min', 'max')


class PoseMetricError(DroDepthError):
    """Trajectories unsuitable for the requested pose metric (too short, no motion, mismatched)."""


# --------------------------------------------------------------------------------------------- depth
def depth_errors(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, min_depth: float = 1e-3,
                 max_depth: float = 80.0, median_scaling: bool = False, clamp_pred: bool = True) -> dict:
    """Depth error metrics of one frame.

    Args:
        pred: ``(H, W)`` predicted depth in metres (or any unit when ``median_scaling``).
        gt: ``(H, W)`` ground-truth depth in metres; invalid = NaN / inf / outside (min, max).
        mask: optional ``(H, W)`` bool, extra pixels to evaluate (AND with the validity mask).
        min_depth, max_depth: valid ground-truth range (exclusive) and prediction clamp range.
        median_scaling: scale ``pred`` by ``median(gt) / median(pred)`` over the evaluated pixels.
        clamp_pred: clamp predictions to ``[min_depth, max_depth]`` (after scaling).

    Returns:
        dict with :data:`DEPTH_KEYS`, ``scale`` (1.0 without median scaling), ``n_valid`` (evaluated pixels)
        and ``coverage`` (fraction of valid-GT pixels with a usable prediction). Metrics are NaN when no
        pixel can be evaluated.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt shapes differ: {pred.shape} vs {gt.shape}')
    if not 0 <= min_depth < max_depth:
        raise ValueError(f'need 0 <= min_depth < max_depth, got {min_depth}, {max_depth}')
    valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != gt.shape:
            raise ValueError(f'mask shape {mask.shape} differs from gt shape {gt.shape}')
        valid &= mask
    n_gt = int(valid.sum())
    usable = valid & np.isfinite(pred) & (pred > 0)
    p, g = pred[usable], gt[usable]
    out = {k: float('nan') for k in DEPTH_KEYS}
    out.update(scale=1.0, n_valid=int(p.size), coverage=float(p.size / n_gt) if n_gt else 0.0)
    if p.size == 0:
        return out
    if median_scaling:
        out['scale'] = float(np.median(g) / np.median(p))
        p = p * out['scale']
    if clamp_pred:
        p = np.clip(p, max(min_depth, 1e-12), max_depth)
    thresh = np.maximum(g / p, p / g)
    diff = g - p
    out.update(abs_rel=float(np.mean(np.abs(diff) / g)), sq_rel=float(np.mean(diff ** 2 / g)),
               rmse=float(np.sqrt(np.mean(diff ** 2))),
               rmse_log=float(np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2))),
               a1=float(np.mean(thresh < 1.25)), a2=float(np.mean(thresh < 1.25 ** 2)),
               a3=float(np.mean(thresh < 1.25 ** 3)))
    return out


def evaluate_depth(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, min_depth: float = 1e-3,
                   max_depth: float = 80.0) -> dict:
    """Metric and per-frame median-scaled errors: ``{'metric': {...}, 'median_scaled': {...}}``."""
    kw = dict(mask=mask, min_depth=min_depth, max_depth=max_depth)
    return {'metric': depth_errors(pred, gt, median_scaling=False, **kw),
            'median_scaled': depth_errors(pred, gt, median_scaling=True, **kw)}


class DepthMetricAccumulator:
    """Average per-frame depth metrics over a sequence (frames without valid pixels are skipped).

    Example::

        acc = DepthMetricAccumulator(max_depth=10.0)
        for pred, gt in pairs:
            acc.add(pred, gt)
        acc.summary()  # {'metric': {...}, 'median_scaled': {...}, 'n_frames': ..., 'scale_mean': ...}
    """

    def __init__(self, min_depth: float = 1e-3, max_depth: float = 80.0):
        self.min_depth, self.max_depth = min_depth, max_depth
        self.frames: list[dict] = []

    def add(self, pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> dict:
        res = evaluate_depth(pred, gt, mask, self.min_depth, self.max_depth)
        if res['metric']['n_valid'] > 0:
            self.frames.append(res)
        return res

    def summary(self) -> dict:
        out: dict = {'n_frames': len(self.frames)}
        for kind in ('metric', 'median_scaled'):
            out[kind] = {k: (float(np.mean([f[kind][k] for f in self.frames])) if self.frames
                             else float('nan'))
                         for k in DEPTH_KEYS + ('coverage',)}
        scales = np.array([f['median_scaled']['scale'] for f in self.frames])
        out['scale_mean'] = float(scales.mean()) if scales.size else float('nan')
        out['scale_std'] = float(scales.std()) if scales.size else float('nan')
        return out


# --------------------------------------------------------------------------------------------- poses
@contextlib.contextmanager
def _quiet_evo():
    """Silence evo's logger (and numpy/evo warnings) for the duration."""
    log = logging.getLogger('evo')
    level, propagate = log.level, log.propagate
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield
    finally:
        log.setLevel(level)
        log.propagate = propagate


def _check_poses(poses: np.ndarray, name: str) -> np.ndarray:
    p = np.asarray(poses, np.float64)
    if p.ndim != 3 or p.shape[1:] != (4, 4):
        raise PoseMetricError(f'{name} must be (N, 4, 4) poses, got shape {p.shape}')
    if not np.all(np.isfinite(p)):
        raise PoseMetricError(f'{name} contains non-finite values')
    return p


def _trajectories(est, ref, stamps, est_stamps, ref_stamps, max_diff: float):
    from evo.core import sync
    from evo.core.trajectory import PoseTrajectory3D
    est = _check_poses(est, 'est')
    ref = _check_poses(ref, 'ref')
    if stamps is not None:
        est_stamps = ref_stamps = stamps
    if est_stamps is None and ref_stamps is None:
        if len(est) != len(ref):
            raise PoseMetricError(f'est has {len(est)} poses and ref {len(ref)}; '
                                  'pass stamps to associate them')
        est_stamps = ref_stamps = np.arange(len(est), dtype=np.float64)
    elif est_stamps is None or ref_stamps is None:
        raise PoseMetricError('pass both est_stamps and ref_stamps (or stamps for both)')
    est_stamps = np.asarray(est_stamps, np.float64)
    ref_stamps = np.asarray(ref_stamps, np.float64)
    if est_stamps.shape != (len(est),) or ref_stamps.shape != (len(ref),):
        raise PoseMetricError('stamps must have one entry per pose')
    t_est = PoseTrajectory3D(poses_se3=list(est), timestamps=est_stamps)
    t_ref = PoseTrajectory3D(poses_se3=list(ref), timestamps=ref_stamps)
    if not (len(est) == len(ref) and np.array_equal(est_stamps, ref_stamps)):
        try:
            t_ref, t_est = sync.associate_trajectories(t_ref, t_est, max_diff=max_diff)
        except Exception as e:  # evo raises SyncException when nothing matches
            raise PoseMetricError(f'cannot associate trajectories by stamp (max_diff={max_diff}s): '
                                  f'{e}') from e
    return t_est, t_ref


def _umeyama(x: np.ndarray, y: np.ndarray, with_scale: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares Sim(3)/SE(3) mapping points ``x`` (3, n) onto ``y``; tolerates collinear points
    (rotation about the line is then arbitrary, which leaves position errors unchanged)."""
    mx, my = x.mean(1, keepdims=True), y.mean(1, keepdims=True)
    xc, yc = x - mx, y - my
    var_x = (xc ** 2).sum() / x.shape[1]
    if var_x < 1e-18:
        raise PoseMetricError('estimated trajectory does not move; alignment is undefined')
    u, d, vt = np.linalg.svd(yc @ xc.T / x.shape[1])
    s = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[2, 2] = -1
    r = u @ s @ vt
    c = float(np.trace(np.diag(d) @ s) / var_x) if with_scale else 1.0
    return r, (my - c * r @ mx).ravel(), c


def _align(t_est, t_ref, align: str) -> float:
    """Align t_est onto t_ref in place; returns the scale applied."""
    from evo.core import lie_algebra as lie
    if align not in ALIGNMENTS:
        raise ValueError(f'unknown alignment {align!r}; expected one of {ALIGNMENTS}')
    if align == 'none':
        return 1.0
    if align == 'origin':
        t_est.align_origin(t_ref)
        return 1.0
    if t_est.num_poses < 3:
        raise PoseMetricError(f'{align} alignment needs at least 3 associated poses, got {t_est.num_poses}')
    r, t, s = _umeyama(t_est.positions_xyz.T, t_ref.positions_xyz.T, with_scale=align in ('sim3', 'scale'))
    if align == 'scale':
        t_est.scale(s)
    else:
        if align == 'sim3':
            t_est.scale(s)
        t_est.transform(lie.se3(r, t))
    return s


def _stats(metric) -> dict:
    from evo.core.metrics import StatisticsType
    return {k: float(metric.get_statistic(StatisticsType(k))) for k in STAT_KEYS}


def ate(est: np.ndarray, ref: np.ndarray, stamps: np.ndarray | None = None,
        est_stamps: np.ndarray | None = None,
        ref_stamps: np.ndarray | None = None, align: str = 'se3', max_diff: float = 0.01) -> dict:
    """Absolute trajectory error (translation) with evo.

    Args:
        est, ref: ``(N, 4, 4)`` and ``(M, 4, 4)`` poses (T_world_cam).
        stamps: shared stamps when both have the same length; or ``est_stamps``/``ref_stamps`` (seconds),
            associated by nearest stamp within ``max_diff``. Index association when all are None.
        align: 'se3' (rigid), 'sim3' (rigid + scale, for monocular), 'scale' (scale only), 'origin'
            (first poses coincide) or 'none'.

    Returns:
        dict with ``rmse, mean, median, std, min, max`` (metres), ``rot_rmse_deg`` / ``rot_mean_deg``
        (absolute rotation error after a rotation-aware alignment, see :func:`rotation_errors_deg`),
        ``scale`` applied to ``est`` and ``n`` poses.
    """
    from evo.core import metrics
    with _quiet_evo():
        t_est, t_ref = _trajectories(est, ref, stamps, est_stamps, ref_stamps, max_diff)
        if t_est.num_poses < 2:
            raise PoseMetricError(f'ATE needs at least 2 associated poses, got {t_est.num_poses}')
        scale = _align(t_est, t_ref, align)
        ape = metrics.APE(metrics.PoseRelation.translation_part)
        ape.process_data((t_ref, t_est))
        out = _stats(ape)
        # Rotation error from its own rotation-aware alignment: after a position-only fit the rotation about
        # a straight path is unconstrained, so the aligned orientations would be arbitrary there.
        rot_deg = rotation_errors_deg(np.asarray(t_est.poses_se3)[:, :3, :3],
                                      np.asarray(t_ref.poses_se3)[:, :3, :3])
        out.update(rot_rmse_deg=float(np.sqrt(np.mean(rot_deg ** 2))), rot_mean_deg=float(np.mean(rot_deg)),
                   scale=float(scale), n=int(t_est.num_poses))
    return out


def rotation_errors_deg(R_est: np.ndarray, R_ref: np.ndarray) -> np.ndarray:
    """Per-pose rotation error (degrees) after the global rotation that best maps ``R_est`` onto ``R_ref``.

    The global rotation is the chordal L2 mean of ``R_ref_i R_est_i^T`` (SVD projection onto SO(3)), i.e. an
    alignment on orientations themselves, independent of the path's shape.

    Args:
        R_est, R_ref: float (N, 3, 3) rotation matrices.
    """
    M = np.einsum('nij,nkj->ik', R_ref, R_est)
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    G = U @ D @ Vt
    rel = np.einsum('nji,jk,nkl->nil', R_ref, G, R_est)
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def rpe(est: np.ndarray, ref: np.ndarray, stamps: np.ndarray | None = None,
        est_stamps: np.ndarray | None = None,
        ref_stamps: np.ndarray | None = None, delta: float = 1, delta_unit: str = 'frames',
        align: str = 'none', all_pairs: bool = False, max_diff: float = 0.01) -> dict:
    """Relative pose error with evo.

    Args:
        est, ref, stamps, est_stamps, ref_stamps, max_diff: as :func:`ate`.
        delta: pose-pair distance, in ``delta_unit`` 'frames' or 'm' (travelled distance of ref).
        align: alignment applied first; RPE is invariant to a rigid alignment, so only 'sim3' / 'scale'
            change the result (monocular scale correction).
        all_pairs: use all pairs instead of consecutive non-overlapping ones.

    Returns:
        ``{'trans': stats (m), 'rot_deg': stats (degrees), 'n': pairs, 'scale': applied scale}``.
    """
    from evo.core import metrics
    from evo.core.units import Unit
    units = {'frames': Unit.frames, 'm': Unit.meters, 'meters': Unit.meters}
    if delta_unit not in units:
        raise ValueError(f'delta_unit must be one of {sorted(units)}, got {delta_unit!r}')
    with _quiet_evo():
        t_est, t_ref = _trajectories(est, ref, stamps, est_stamps, ref_stamps, max_diff)
        if t_est.num_poses < 2:
            raise PoseMetricError(f'RPE needs at least 2 associated poses, got {t_est.num_poses}')
        scale = _align(t_est, t_ref, align)
        out: dict = {}
        for key, rel in (('trans', metrics.PoseRelation.translation_part),
                         ('rot_deg', metrics.PoseRelation.rotation_angle_deg)):
            m = metrics.RPE(rel, delta=delta, delta_unit=units[delta_unit], all_pairs=all_pairs)
            try:
                m.process_data((t_ref, t_est))
            except Exception as e:  # evo: delta larger than the trajectory, no pairs
                raise PoseMetricError(f'RPE with delta={delta} {delta_unit}: {e}') from e
            out[key] = _stats(m)
            out['n'] = int(len(m.error))
        out['scale'] = float(scale)
    return out


def trajectory_length(poses: np.ndarray) -> float:
    """Sum of distances between consecutive positions of ``(N, 4, 4)`` poses."""
    p = _check_poses(poses, 'poses')
    return float(np.linalg.norm(np.diff(p[:, :3, 3], axis=0), axis=1).sum()) if len(p) > 1 else 0.0


def length_error(est: np.ndarray, ref: np.ndarray, scale: float = 1.0) -> dict:
    """Trajectory length comparison:
    ``{'length_ref', 'length_est' (times scale), 'abs_error', 'rel_error'}``."""
    le = trajectory_length(est) * float(scale)
    lr = trajectory_length(ref)
    return {'length_ref': lr, 'length_est': le, 'abs_error': abs(le - lr),
            'rel_error': abs(le - lr) / lr if lr > 0 else float('nan')}
