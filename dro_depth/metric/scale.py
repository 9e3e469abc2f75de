"""Metric scale for DRO's depth and odometry.

DRO's depth and translations are only as metric as its training: a self-supervised model is right up
to an unknown factor, and any model drifts in scale on a new robot. A metric-depth model (ZoeDepth) runs
on some frames at a lower rate; this module turns its depth into the factor ``s`` with
``s * DRO depth ~= metric depth`` and applies ``s`` to depth and odometry.

Three pieces, all numpy:

1. :func:`estimate_scale` -- one frame. Pixels valid in both maps give log-ratios
   ``r = log(metric) - log(dro)``; gross outliers are dropped with a MAD test
   (``|r - median| > k * 1.4826 * MAD``) and ``log s`` is the median of the inliers. Its uncertainty is
   ``log_sigma = sqrt(floor^2 + (1.2533 * spread / sqrt(n_eff))^2)``: the statistical part of a median of
   ``n_eff`` samples, where ``n_eff`` is capped (neighbouring pixels' errors are correlated, so 300k
   pixels are not 300k independent samples), plus a floor for the metric model's systematic error
   (a whole-frame bias of a few percent that no pixel count averages away).
2. :class:`ScaleFilter` -- over time, a 1-D Kalman filter on ``log s`` (log space: scale errors are
   multiplicative and ``s > 0`` by construction). A random walk with ``process_noise`` (log units per
   sqrt(second)) models scale drift. Each observation is gated on its innovation (chi-square, 1 dof);
   rejections are counted, and ``reinit_after`` consecutive rejections on the same side re-initialise the
   filter on them (a true, persistent change of scale is accepted; isolated outliers are not).
   A change small enough to pass the gate is caught by a two-sided CUSUM on the normalised innovations
   of accepted observations: on an alarm the variance is inflated by the run's mean innovation squared,
   so the next observations pull the estimate over within one or two updates instead of dozens.
   States: ``unknown`` (no observation yet; :attr:`ScaleFilter.scale` is ``initial_scale``) ->
   ``converging`` -> ``metric`` (``log_sigma`` below ``metric_log_sigma`` and at least
   ``metric_min_updates`` observations since the last (re)initialisation, so one odd frame is not
   enough). Without observations ``log_sigma`` grows with the process noise (:meth:`ScaleFilter.state_at`).
3. :class:`MetricTrajectory` -- odometry in metres. **Policy (odometry semantics):** the published
   trajectory is built incrementally. For each new frame the relative motion
   ``T_prev_cur = inv(T_world_prev) @ T_world_cur`` of the unscaled DRO trajectory has its translation
   multiplied by the CURRENT scale and is appended to the last published pose:
   ``T_odom_cur = T_odom_prev @ scaled(T_prev_cur)``. Past poses are never rewritten, so a new scale
   estimate changes how fast the published pose moves from now on, never where it already is: no jump
   in the odom frame. The price is that motion made while the scale was wrong stays wrong; correcting
   history is the job of a mapping backend (RTAB-Map's loop closures), not of odometry. Before the first
   scale fix the filter's ``initial_scale`` (default 1: DRO units) is used; a node that would rather
   not publish un-metric odometry holds publishing until the first fix and then calls
   :meth:`MetricTrajectory.anchor`, which places the pose at the unscaled pose times the first scale
   (a one-off re-anchoring that is only jump-free because nothing was published before).
   Depth needs no history: :func:`scale_depth` multiplies the current map by the current scale.

:class:`ScalePairing` matches DRO and metric depth maps by stamp (the metric model is slower and
answers late).
"""
from __future__ import annotations

import collections
import enum
import logging
import math
from dataclasses import dataclass
from typing import Any, Deque, Dict, Optional, Tuple

import cv2
import numpy as np

from dro_depth.errors import DroDepthError

__all__ = ['ScaleError', 'ScaleObservation', 'estimate_scale', 'ScaleState', 'ScaleFilterConfig',
           'ScaleFilter', 'MetricTrajectory', 'scale_depth', 'scale_covariance', 'ScalePairing',
           'MAD_TO_SIGMA', 'MEDIAN_EFFICIENCY']

logger = logging.getLogger(__name__)

MAD_TO_SIGMA = 1.4826        # sigma of a normal distribution = 1.4826 * its median absolute deviation
MEDIAN_EFFICIENCY = 1.2533   # std of the median of n normal samples = 1.2533 * sigma / sqrt(n)


class ScaleError(DroDepthError):
    """Input to the scale estimation is malformed (type, shape, values or settings)."""


# --------------------------------------------------------------------------------------------- frame
@dataclass(frozen=True)
class ScaleObservation:
    """One frame's estimate of the DRO-to-metric scale.

    Attributes:
        scale: ``s`` with ``s * dro_depth ~= metric_depth``; NaN when the observation is invalid.
        log_sigma: 1-sigma uncertainty of ``log(scale)`` (about the relative error); inf when invalid.
        inlier_ratio: share of the valid pixels that passed the outlier test.
        n_pixels: valid pixels used (after subsampling).
        n_inliers: pixels inside the MAD band.
        spread: robust std of the log-ratios of the inliers (per-pixel disagreement of the two maps).
        stamp: the frame's stamp when given (seconds).
        reason: why the observation is invalid ('' when valid).
    """

    scale: float
    log_sigma: float
    inlier_ratio: float
    n_pixels: int
    n_inliers: int = 0
    spread: float = float('nan')
    stamp: Optional[float] = None
    reason: str = ''

    @property
    def valid(self) -> bool:
        return (not self.reason and math.isfinite(self.scale) and self.scale > 0
                and math.isfinite(self.log_sigma) and self.log_sigma > 0)

    @property
    def log_scale(self) -> float:
        return math.log(self.scale) if self.valid else float('nan')

    @classmethod
    def invalid(cls, reason: str, n_pixels: int = 0, inlier_ratio: float = 0.0,
                stamp: Optional[float] = None) -> 'ScaleObservation':
        return cls(float('nan'), float('inf'), inlier_ratio, n_pixels, 0, float('nan'), stamp, reason)


def _as_map(name: str, value: Any) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise ScaleError(f'{name} must be a numpy array [H, W], got {type(value).__name__}')
    if value.ndim != 2:
        raise ScaleError(f'{name} must be 2-D [H, W], got shape {value.shape} (squeeze channel/batch axes)')
    if value.shape[0] < 2 or value.shape[1] < 2:
        raise ScaleError(f'{name} is too small: shape {value.shape}')
    if value.dtype == bool:
        return value
    if not np.issubdtype(value.dtype, np.number):
        raise ScaleError(f'{name} must be numeric, got dtype {value.dtype}')
    return value


def _to_shape(name: str, value: np.ndarray, shape: Tuple[int, int],
              other_shape: Tuple[int, int]) -> np.ndarray:
    """Bring a DRO-sized or metric-sized side map to DRO's shape (nearest neighbour)."""
    if value.shape == shape:
        return value
    if value.shape != other_shape:
        raise ScaleError(f'{name} has shape {value.shape}; expected the DRO depth shape {shape} '
                         f'or the metric depth shape {other_shape}')
    src = value.astype(np.uint8) if value.dtype == bool else value.astype(np.float32)
    out = cv2.resize(src, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return out.astype(bool) if value.dtype == bool else out


def estimate_scale(dro_depth: np.ndarray, metric_depth: np.ndarray, confidence: Optional[np.ndarray] = None,
                   valid: Optional[np.ndarray] = None, *, min_depth: float = 0.1, max_depth: float = 80.0,
                   min_confidence: float = 0.5, outlier_k: float = 3.0, min_pixels: int = 500,
                   min_inlier_ratio: float = 0.5, max_spread: float = 0.5, sigma_floor: float = 0.03,
                   max_effective_samples: float = 64.0, max_pixels: int = 100_000,
                   stamp: Optional[float] = None) -> ScaleObservation:
    """Robust per-frame scale ``s`` such that ``s * dro_depth ~= metric_depth``.

    Both maps must cover the same field of view (the full input image, no crop); the metric map is
    resized to DRO's resolution with nearest neighbour (no mixing across depth edges, NaN stays NaN).

    Args:
        dro_depth: [H, W] DRO depth in DRO units (unscaled), NaN/<=0 where invalid.
        metric_depth: [h, w] metric depth in metres, NaN/<=0/inf where invalid.
        confidence: optional [H, W] or [h, w] in [0, 1]; pixels below ``min_confidence`` are ignored.
        valid: optional boolean mask [H, W] or [h, w] of pixels allowed to vote.
        min_depth, max_depth: metres; metric depth outside is ignored (the model's trusted range).
        outlier_k: MAD band half-width in sigmas.
        min_pixels: fewer valid pixels give an invalid observation.
        min_inlier_ratio: a lower inlier share gives an invalid observation (the maps disagree in shape).
        max_spread: a larger robust std of the inliers' log-ratios (0.5 ~ 65 %) gives an invalid
            observation: the maps agree on no common scale.
        sigma_floor: systematic log-error of the metric model on one frame (0.03 ~ 3 %), the floor of
            ``log_sigma``.
        max_effective_samples: cap on the number of independent samples: errors of neighbouring pixels
            are correlated (64 ~ an 8 x 8 grid of independent patches).
        max_pixels: valid pixels above this are subsampled on a regular stride (speed).
        stamp: carried into the observation.

    Returns:
        :class:`ScaleObservation`; ``.valid`` is False with a ``reason`` when there is too little data.

    Raises:
        ScaleError: malformed maps or settings.
    """
    dro = _as_map('dro_depth', dro_depth)
    metric = _as_map('metric_depth', metric_depth)
    if dro.dtype == bool or metric.dtype == bool:
        raise ScaleError('depth maps must be numeric, not boolean')
    if not (0 < min_depth < max_depth):
        raise ScaleError(f'need 0 < min_depth < max_depth, got {min_depth}, {max_depth}')
    if outlier_k <= 0 or not 0 <= min_inlier_ratio <= 1 or sigma_floor < 0 or max_effective_samples < 1 \
            or not max_spread > 0:
        raise ScaleError(f'invalid settings: outlier_k={outlier_k}, min_inlier_ratio={min_inlier_ratio}, '
                         f'max_spread={max_spread}, '
                         f'sigma_floor={sigma_floor}, max_effective_samples={max_effective_samples}')
    if min_pixels < 3 or max_pixels < min_pixels:
        raise ScaleError(f'need 3 <= min_pixels <= max_pixels, got {min_pixels}, {max_pixels}')
    shape, mshape = dro.shape, metric.shape
    if mshape != shape:
        metric = cv2.resize(np.ascontiguousarray(metric, dtype=np.float32), (shape[1], shape[0]),
                            interpolation=cv2.INTER_NEAREST)
    d = dro.astype(np.float64, copy=False)
    m = metric.astype(np.float64, copy=False)
    with np.errstate(invalid='ignore'):
        ok = np.isfinite(d) & (d > 0) & np.isfinite(m) & (m >= min_depth) & (m <= max_depth)
        if confidence is not None:
            c = _to_shape('confidence', _as_map('confidence', confidence), shape, mshape)
            ok &= np.isfinite(c) & (c >= min_confidence)
    if valid is not None:
        v = _to_shape('valid', _as_map('valid', valid), shape, mshape)
        ok &= v.astype(bool)
    idx = np.flatnonzero(ok)
    if idx.size < min_pixels:
        return ScaleObservation.invalid(f'too few valid pixels: {idx.size} < min_pixels {min_pixels}',
                                        int(idx.size), stamp=stamp)
    if idx.size > max_pixels:
        idx = idx[np.linspace(0, idx.size - 1, max_pixels).astype(np.int64)]
    r = np.log(m.ravel()[idx]) - np.log(d.ravel()[idx])
    med = float(np.median(r))
    sigma_r = MAD_TO_SIGMA * float(np.median(np.abs(r - med)))
    band = outlier_k * max(sigma_r, 1e-5)          # floor: float32 rounding of identical maps
    inl = r[np.abs(r - med) <= band]
    ratio = inl.size / r.size
    if ratio < min_inlier_ratio or inl.size < 3:
        return ScaleObservation.invalid(f'inlier ratio {ratio:.2f} is below min_inlier_ratio '
                                        f'{min_inlier_ratio}: the two maps disagree beyond a scale',
                                        int(r.size), ratio, stamp)
    log_s = float(np.median(inl))
    robust_spread = MAD_TO_SIGMA * float(np.median(np.abs(inl - log_s)))
    if robust_spread > max_spread:
        return ScaleObservation.invalid(f'log-ratio spread {robust_spread:.2f} exceeds max_spread '
                                        f'{max_spread}: the two maps agree on no common scale',
                                        int(r.size), ratio, stamp)
    # Spread of the inliers: std about their median (a 3-sigma truncated normal keeps 98.6 % of sigma).
    spread = float(np.sqrt(np.mean((inl - log_s) ** 2)))
    n_eff = min(float(inl.size), float(max_effective_samples))
    stat = MEDIAN_EFFICIENCY * spread / math.sqrt(n_eff)
    log_sigma = math.sqrt(sigma_floor ** 2 + stat ** 2)
    if log_sigma <= 0:                        # identical maps and no floor: keep the filter finite
        log_sigma = 1e-6
    return ScaleObservation(scale=math.exp(log_s), log_sigma=log_sigma, inlier_ratio=float(ratio),
                            n_pixels=int(r.size), n_inliers=int(inl.size), spread=spread, stamp=stamp)


# --------------------------------------------------------------------------------------------- time
class ScaleState(str, enum.Enum):
    """How far the scale is known."""

    UNKNOWN = 'unknown'         # no valid observation yet: scale is the prior (initial_scale)
    CONVERGING = 'converging'   # observed, but log_sigma is above metric_log_sigma
    METRIC = 'metric'           # log_sigma below metric_log_sigma: outputs are metric


@dataclass
class ScaleFilterConfig:
    """Settings of :class:`ScaleFilter` (map one to one onto ROS parameters)."""

    initial_scale: float = 1.0          # used while UNKNOWN
    process_noise: float = 0.002        # random walk of log s, per sqrt(second): drift of DRO's scale
    gate_chi2: float = 9.0              # innovation^2 / S above this rejects (9 = 3 sigma, 1 dof)
    reinit_after: int = 5               # consecutive same-side rejections that re-initialise
    metric_log_sigma: float = 0.05      # log_sigma below this is METRIC (~5 %) ...
    metric_min_updates: int = 3         # ... and at least this many observations since (re)initialisation
    drift_k: float = 0.5                # CUSUM allowance on normalised innovations (sigmas per observation)
    drift_h: float = 5.0                # CUSUM alarm threshold; 0 disables drift detection

    def validate(self) -> None:
        """Raise ScaleError naming the first invalid setting."""
        if not (math.isfinite(self.initial_scale) and self.initial_scale > 0):
            raise ScaleError(f'initial_scale must be finite and > 0, got {self.initial_scale!r}')
        if not (math.isfinite(self.process_noise) and self.process_noise >= 0):
            raise ScaleError(f'process_noise must be finite and >= 0, got {self.process_noise!r}')
        if not (math.isfinite(self.gate_chi2) and self.gate_chi2 > 0):
            raise ScaleError(f'gate_chi2 must be finite and > 0, got {self.gate_chi2!r}')
        if isinstance(self.reinit_after, bool) or not isinstance(self.reinit_after, int) \
                or self.reinit_after < 1:
            raise ScaleError(f'reinit_after must be an integer >= 1, got {self.reinit_after!r}')
        if not (math.isfinite(self.metric_log_sigma) and self.metric_log_sigma > 0):
            raise ScaleError(f'metric_log_sigma must be finite and > 0, got {self.metric_log_sigma!r}')
        if isinstance(self.metric_min_updates, bool) or not isinstance(self.metric_min_updates, int) \
                or self.metric_min_updates < 1:
            raise ScaleError(f'metric_min_updates must be an integer >= 1, got {self.metric_min_updates!r}')
        if not (math.isfinite(self.drift_k) and self.drift_k >= 0):
            raise ScaleError(f'drift_k must be finite and >= 0, got {self.drift_k!r}')
        if not (math.isfinite(self.drift_h) and self.drift_h >= 0):
            raise ScaleError(f'drift_h must be finite and >= 0, got {self.drift_h!r}')


class ScaleFilter:
    """1-D Kalman filter on ``log s`` with innovation gating and re-initialisation.

    ``update`` returns what happened to the observation: 'initialized', 'accepted', 'rejected',
    'reinitialized' or 'invalid'. Stamps (seconds) drive the process noise; an observation older than
    the last one (the metric model answers late and out of order) is applied without prediction.
    """

    OUTCOMES = ('initialized', 'accepted', 'rejected', 'reinitialized', 'invalid')

    def __init__(self, config: ScaleFilterConfig | None = None) -> None:
        self.config = config or ScaleFilterConfig()
        self.config.validate()
        self.reset()

    def reset(self) -> None:
        """Forget everything: back to UNKNOWN."""
        self._x: Optional[float] = None         # log s
        self._P = math.inf                      # variance of log s
        self._stamp: Optional[float] = None
        self._rejected: Deque[Tuple[float, float, float]] = collections.deque(maxlen=self.config.reinit_after)
        self.n_updates = 0
        self.n_accepted = 0
        self.n_rejected = 0
        self.n_invalid = 0
        self.n_reinit = 0
        self.n_drift_alarms = 0
        self.consecutive_rejections = 0
        self.updates_since_init = 0              # observations fused since the last (re)initialisation
        self._cusum = [0.0, 0.0, 0, 0.0, 0.0, 0]  # (g, sum of innovations, run length) for + and - sides
        self.last_outcome = ''
        self.last_reason = ''
        self.last_nis = float('nan')            # normalised innovation squared of the last observation
        self.last_observation: Optional[ScaleObservation] = None

    # -------------------------------------------------------------- read-out
    @property
    def state(self) -> ScaleState:
        return self.state_at(self._stamp)

    @property
    def is_metric(self) -> bool:
        return self.state is ScaleState.METRIC

    @property
    def scale(self) -> float:
        """Current scale; ``initial_scale`` while UNKNOWN."""
        return self.config.initial_scale if self._x is None else math.exp(self._x)

    @property
    def log_scale(self) -> float:
        return math.log(self.scale)

    @property
    def log_sigma(self) -> float:
        """1-sigma of ``log s`` at the last observation's stamp (inf while UNKNOWN)."""
        return math.sqrt(self._P)

    @property
    def stamp(self) -> Optional[float]:
        return self._stamp

    def log_sigma_at(self, stamp: float) -> float:
        """``log_sigma`` aged to ``stamp`` by the process noise (does not change the filter)."""
        dt = 0.0 if self._stamp is None or stamp is None else max(0.0, float(stamp) - self._stamp)
        return math.sqrt(self._P + self.config.process_noise ** 2 * dt)

    def state_at(self, stamp: float) -> ScaleState:
        """State aged to ``stamp``: without observations a METRIC scale decays to CONVERGING."""
        if self._x is None:
            return ScaleState.UNKNOWN
        if self.updates_since_init >= self.config.metric_min_updates \
                and self.log_sigma_at(stamp) < self.config.metric_log_sigma:
            return ScaleState.METRIC
        return ScaleState.CONVERGING

    def diagnostics(self) -> Dict[str, Any]:
        """Flat key/values for diagnostic_msgs (strings are formatted by the node)."""
        obs = self.last_observation
        return {
            'scale': self.scale, 'log_sigma': self.log_sigma, 'state': self.state.value,
            'updates': self.n_updates, 'accepted': self.n_accepted, 'rejected': self.n_rejected,
            'invalid': self.n_invalid, 'reinitialized': self.n_reinit, 'drift_alarms': self.n_drift_alarms,
            'consecutive_rejections': self.consecutive_rejections, 'last_outcome': self.last_outcome,
            'last_reason': self.last_reason, 'last_nis': self.last_nis,
            'last_observed_scale': obs.scale if obs is not None else float('nan'),
            'last_inlier_ratio': obs.inlier_ratio if obs is not None else float('nan'),
        }

    # -------------------------------------------------------------- write
    def inflate(self, extra_log_sigma: float) -> None:
        """Add uncertainty (e.g. after an estimator reset, when DRO's scale may have changed)."""
        if not (math.isfinite(extra_log_sigma) and extra_log_sigma >= 0):
            raise ScaleError(f'extra_log_sigma must be finite and >= 0, got {extra_log_sigma!r}')
        if self._x is not None:
            self._P += extra_log_sigma ** 2

    def _predict(self, stamp: float) -> None:
        if self._stamp is None:
            self._stamp = stamp
        elif stamp > self._stamp:
            self._P += self.config.process_noise ** 2 * (stamp - self._stamp)
            self._stamp = stamp

    def _init(self, z: float, R: float, stamp: float, n: int = 1) -> None:
        self._x, self._P, self._stamp = z, R, stamp
        self.updates_since_init = n
        self._rejected.clear()
        self.consecutive_rejections = 0
        self._cusum = [0.0, 0.0, 0, 0.0, 0.0, 0]

    def _drift(self, nu: float, S: float) -> None:
        """Two-sided CUSUM on the normalised innovation; on an alarm inflate P by the run's mean^2."""
        cfg = self.config
        if cfg.drift_h <= 0:
            return
        z = nu / math.sqrt(S)
        for side, sign in ((0, 1.0), (3, -1.0)):            # [g, sum of innovations, count] per side
            g, total, n = self._cusum[side:side + 3]
            if g <= 0:
                total, n = 0.0, 0
            self._cusum[side:side + 3] = [max(0.0, g + sign * z - cfg.drift_k), total + nu, n + 1]
        for side in (0, 3):
            g, total, n = self._cusum[side:side + 3]
            if g > cfg.drift_h:
                mean = total / n
                self._P += mean * mean
                self.n_drift_alarms += 1
                logger.info('scale drift detected over %d observations (mean innovation %+.3f): '
                            'variance inflated', n, mean)
                self._cusum = [0.0, 0.0, 0, 0.0, 0.0, 0]
                return

    def update(self, observation: ScaleObservation, stamp: Optional[float] = None) -> str:
        """Fuse one observation; ``stamp`` defaults to ``observation.stamp``.

        Returns:
            the outcome, one of :attr:`OUTCOMES`.
        """
        if not isinstance(observation, ScaleObservation):
            raise ScaleError(f'observation must be a ScaleObservation, got {type(observation).__name__}')
        if stamp is None:
            stamp = observation.stamp
        if stamp is None:
            raise ScaleError('a stamp is needed: pass stamp= or set ScaleObservation.stamp')
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ScaleError(f'stamp must be finite, got {stamp}')
        self.n_updates += 1
        self.last_observation = observation
        if not observation.valid:
            self.n_invalid += 1
            self.last_outcome, self.last_reason = 'invalid', observation.reason or 'invalid observation'
            return self.last_outcome
        z, R = observation.log_scale, observation.log_sigma ** 2
        if self._x is None:
            self._init(z, R, stamp)
            self.n_accepted += 1
            self.last_outcome, self.last_reason, self.last_nis = 'initialized', '', 0.0
            return self.last_outcome
        self._predict(stamp)
        nu = z - self._x
        S = self._P + R
        self.last_nis = nu * nu / S
        if self.last_nis <= self.config.gate_chi2:
            gain = self._P / S
            self._x += gain * nu
            self._P *= 1.0 - gain
            self._drift(nu, S)
            self.updates_since_init += 1
            self._rejected.clear()
            self.consecutive_rejections = 0
            self.n_accepted += 1
            self.last_outcome, self.last_reason = 'accepted', ''
            return self.last_outcome
        self.n_rejected += 1
        self.consecutive_rejections += 1
        self._rejected.append((z, R, nu))
        self.last_reason = (f'innovation {nu:+.3f} (scale x{math.exp(nu):.3f}) fails the gate: '
                            f'NIS {self.last_nis:.1f} > {self.config.gate_chi2}')
        if len(self._rejected) == self.config.reinit_after:
            zs = np.array([r[0] for r in self._rejected])
            Rs = np.array([r[1] for r in self._rejected])
            signs = np.sign([r[2] for r in self._rejected])
            if np.all(signs == signs[0]):
                k = len(zs)
                z0 = float(np.median(zs))
                P0 = (math.pi / 2) * max(float(np.median(Rs)), float(np.var(zs))) / k
                logger.info('scale re-initialised after %d consecutive rejections: %.4f -> %.4f',
                            k, self.scale, math.exp(z0))
                self._init(z0, P0, stamp, k)
                self.n_reinit += 1
                self.last_outcome = 'reinitialized'
                return self.last_outcome
        self.last_outcome = 'rejected'
        return self.last_outcome


# --------------------------------------------------------------------------------------------- apply
def _check_scale(scale: Any) -> float:
    try:
        s = float(scale)
    except (TypeError, ValueError):
        raise ScaleError(f'scale must be a number, got {scale!r}') from None
    if not (math.isfinite(s) and s > 0):
        raise ScaleError(f'scale must be finite and > 0, got {s}')
    return s


def _check_pose(name: str, T: Any) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ScaleError(f'{name} must be a 4x4 rigid transform, got shape {T.shape}')
    if not np.all(np.isfinite(T)):
        raise ScaleError(f'{name} contains NaN or inf')
    if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0], atol=1e-9):
        raise ScaleError(f'{name} last row must be [0, 0, 0, 1], got {T[3].tolist()}')
    return T


def scale_depth(depth: np.ndarray, scale: float, min_depth: Optional[float] = None,
                max_depth: Optional[float] = None) -> np.ndarray:
    """``depth * scale`` as float32 [H, W]; NaN stays NaN, and (optionally) values outside
    ``[min_depth, max_depth]`` after scaling become NaN (REP 118: limits apply in metres)."""
    s = _check_scale(scale)
    if not isinstance(depth, np.ndarray):
        raise ScaleError(f'depth must be a numpy array, got {type(depth).__name__}')
    out = depth.astype(np.float32) * np.float32(s)
    if min_depth is not None or max_depth is not None:
        lo = -np.inf if min_depth is None else min_depth
        hi = np.inf if max_depth is None else max_depth
        with np.errstate(invalid='ignore'):
            out[~((out >= lo) & (out <= hi))] = np.nan
    return out


def scale_covariance(covariance: np.ndarray, scale: float) -> np.ndarray:
    """6x6 pose covariance (x, y, z, rot x, rot y, rot z) from DRO units to metres: ``S C S`` with
    ``S = diag(s, s, s, 1, 1, 1)`` (translation block times s^2, cross terms times s)."""
    s = _check_scale(scale)
    C = np.asarray(covariance, dtype=np.float64)
    if C.shape != (6, 6):
        raise ScaleError(f'covariance must be 6x6, got shape {C.shape}')
    d = np.array([s, s, s, 1.0, 1.0, 1.0])
    return C * d[:, None] * d[None, :]


class MetricTrajectory:
    """Odometry in metres from the unscaled DRO trajectory, without jumps (see the module docstring).

    ``update(T_world_cam_raw, scale)`` appends ``scaled(inv(T_raw_prev) @ T_raw)`` to the last
    published pose and returns the new published pose ``T_odom_cam`` [4, 4]. The first call (or
    :meth:`anchor`) places the pose at the raw pose with its translation times ``scale``.

    Covariance (approximate): :meth:`covariance` scales the estimator's covariance (DRO units) with the
    current scale (:func:`scale_covariance`) and adds the scale's own uncertainty, accumulated as fully
    correlated along the path: each step adds ``log_sigma * delta_p`` to a vector ``a`` and ``a a^T`` is
    added to the position block (a constant wrong scale stretches the whole path; going back and forth
    cancels).
    """

    def __init__(self) -> None:
        self._T_raw: Optional[np.ndarray] = None
        self._T_pub: Optional[np.ndarray] = None
        self._a = np.zeros(3)
        self.path_length = 0.0          # metres along the published trajectory
        self.raw_path_length = 0.0      # DRO units along the raw trajectory
        self.last_step = np.zeros(3)    # last published translation step, odom frame, metres
        self.last_step_scale = float('nan')

    @property
    def initialized(self) -> bool:
        return self._T_pub is not None

    @property
    def pose(self) -> np.ndarray:
        if self._T_pub is None:
            raise ScaleError('MetricTrajectory has no pose yet: call update() first')
        return self._T_pub.copy()

    def anchor(self, T_world_cam_raw: np.ndarray, scale: float) -> np.ndarray:
        """(Re)start the published trajectory at the raw pose with translation times ``scale``.

        Jump-free only when nothing was published before (e.g. odometry held until the first scale fix).
        """
        T = _check_pose('T_world_cam_raw', T_world_cam_raw)
        s = _check_scale(scale)
        self._T_raw = T.copy()
        self._T_pub = T.copy()
        self._T_pub[:3, 3] *= s
        self._a = np.zeros(3)
        self.last_step = np.zeros(3)
        self.last_step_scale = s
        return self._T_pub.copy()

    def update(self, T_world_cam_raw: np.ndarray, scale: float, log_sigma: float = 0.0) -> np.ndarray:
        """Append this frame's motion scaled by the current ``scale``; returns ``T_odom_cam`` [4, 4].

        Args:
            T_world_cam_raw: [4, 4] the estimator's (unscaled) camera pose.
            scale: current scale (e.g. ``ScaleFilter.scale``).
            log_sigma: the scale's 1-sigma in log units, for :meth:`covariance` (inf while unknown is
                taken as 1).
        """
        T = _check_pose('T_world_cam_raw', T_world_cam_raw)
        s = _check_scale(scale)
        sig = float(log_sigma)
        if math.isnan(sig) or sig < 0:
            raise ScaleError(f'log_sigma must be >= 0, got {log_sigma!r}')
        sig = min(sig, 1.0)
        if self._T_pub is None:
            return self.anchor(T, s)
        R_prev, t_prev = self._T_raw[:3, :3], self._T_raw[:3, 3]
        T_rel = np.eye(4)
        T_rel[:3, :3] = R_prev.T @ T[:3, :3]
        T_rel[:3, 3] = R_prev.T @ (T[:3, 3] - t_prev)
        self.raw_path_length += float(np.linalg.norm(T_rel[:3, 3]))
        T_rel[:3, 3] *= s
        T_pub = self._T_pub @ T_rel
        self.last_step = T_pub[:3, 3] - self._T_pub[:3, 3]
        self.path_length += float(np.linalg.norm(self.last_step))
        self._a = self._a + sig * self.last_step
        self._T_raw = T.copy()
        self._T_pub = T_pub
        self.last_step_scale = s
        return T_pub.copy()

    def covariance(self, covariance_raw: np.ndarray, scale: float) -> np.ndarray:
        """Metric 6x6 covariance (ROS order) for the current pose from the estimator's covariance in DRO
        units and the current scale, plus the accumulated scale uncertainty."""
        C = scale_covariance(covariance_raw, scale)
        C[:3, :3] += np.outer(self._a, self._a)
        return C


# --------------------------------------------------------------------------------------------- pairing
class ScalePairing:
    """Pairs DRO and metric depth maps by stamp.

    DRO runs on every frame and the metric model on a few, answering later; both sides are kept for the
    last ``max_frames`` stamps. ``add_dro`` / ``add_metric`` return the ``(stamp, dro, confidence,
    metric)`` tuple when the other side of that stamp is already there, else None.
    """

    def __init__(self, max_frames: int = 30, tolerance: float = 1e-4) -> None:
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
            raise ScaleError(f'max_frames must be an integer >= 1, got {max_frames!r}')
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise ScaleError(f'tolerance must be finite and >= 0, got {tolerance!r}')
        self.tolerance = tolerance
        self._dro: 'collections.OrderedDict[float, Tuple[np.ndarray, Optional[np.ndarray]]]' = \
            collections.OrderedDict()
        self._metric: 'collections.OrderedDict[float, np.ndarray]' = collections.OrderedDict()
        self.max_frames = max_frames

    def _find(self, table: 'collections.OrderedDict[float, Any]', stamp: float) -> Optional[float]:
        best, best_dt = None, self.tolerance
        for key in table:
            dt = abs(key - stamp)
            if dt <= best_dt:
                best, best_dt = key, dt
        return best

    def _trim(self, table: 'collections.OrderedDict[float, Any]') -> None:
        while len(table) > self.max_frames:
            table.popitem(last=False)

    def add_dro(self, stamp: float, depth: np.ndarray, confidence: Optional[np.ndarray] = None):
        stamp = float(stamp)
        key = self._find(self._metric, stamp)
        if key is not None:
            return stamp, depth, confidence, self._metric.pop(key)
        self._dro[stamp] = (depth, confidence)
        self._trim(self._dro)
        return None

    def add_metric(self, stamp: float, metric_depth: np.ndarray):
        stamp = float(stamp)
        key = self._find(self._dro, stamp)
        if key is not None:
            depth, conf = self._dro.pop(key)
            return key, depth, conf, metric_depth
        self._metric[stamp] = metric_depth
        self._trim(self._metric)
        return None

    def __len__(self) -> int:
        return len(self._dro) + len(self._metric)
