"""Metric estimator output: the estimator's results in DRO units in, metric results out.

:class:`MetricScaler` is the pure glue between :class:`~dro_depth.sfm.estimator.SfmEstimator` and a metric-depth
model running at a lower rate (ZoeDepth or the light metric model, in their own worker):

    scaler = MetricScaler()
    res = estimator.track(image, K, stamp)          # every frame, DRO units
    metric_res = scaler.on_frame(res)               # depth, pose and covariance in metres (once known)
    ...
    scaler.on_metric(stamp_k, metric_depth_k)       # whenever the metric model answers for frame k

Policy (from :mod:`dro_depth.metric.scale`): the scale is filtered in log space; each new relative motion is
scaled by the current scale and appended to the last published pose, so odometry never jumps when the
estimate moves, and past poses are never rewritten. Depth limits apply in metres, after scaling. Until the
first valid metric observation the output stays in DRO units (``regime == 'dro_units'``).
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Dict, Optional

import numpy as np

from dro_depth.sfm.estimator import FrameResult
from dro_depth.errors import ConfigError
from .scale import (MetricTrajectory, ScaleFilter, ScaleFilterConfig, ScaleObservation, ScalePairing,
                    ScaleState, estimate_scale, scale_depth)

__all__ = ['MetricScaler', 'ScaleRegime', 'pairing_view', 'PAIRING_MAX_PIXELS']

#: The most pixels of a DRO map kept while it waits for its metric answer: larger maps (a 4K frame) are
#: kept subsampled, so ``pairing_frames`` waiting maps stay small whatever the input size (the scale is a
#: robust ratio over the pixels; estimate_scale resizes the metric map to whatever DRO size it gets).
PAIRING_MAX_PIXELS = 640 * 480


def pairing_view(values: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """``values`` itself when it has at most :data:`PAIRING_MAX_PIXELS` pixels, else an every-k-th-pixel copy
    that has (so the full-size map is not kept alive by the pairing table)."""
    if values is None or values.ndim < 2 or values.shape[0] * values.shape[1] <= PAIRING_MAX_PIXELS:
        return values
    k = int(np.ceil(np.sqrt(values.shape[0] * values.shape[1] / PAIRING_MAX_PIXELS)))
    return np.ascontiguousarray(values[::k, ::k])


class ScaleRegime(str, enum.Enum):
    """What unit the published depth and odometry are in."""

    DRO_UNITS = 'dro_units'       # no metric observation yet: the network's own units
    CONVERGING = 'converging'     # metric, scale still uncertain
    METRIC = 'metric'             # metric, scale uncertainty below the filter's threshold


class MetricScaler:
    """Applies a filtered metric scale to estimator results (see the module docstring).

    Args:
        filter_config: the log-scale Kalman filter's settings.
        min_depth, max_depth: metres; published depth outside becomes NaN (applied after scaling).
        pairing_frames: how many recent frames wait for a late metric answer.
        reset_inflation: log-sigma added to the scale when the estimator resets (the new segment's scale
            may differ).
    """

    def __init__(self, filter_config: ScaleFilterConfig | None = None, min_depth: float = 0.1,
                 max_depth: float = 80.0, pairing_frames: int = 30, reset_inflation: float = 0.05) -> None:
        if not 0 < min_depth < max_depth:
            raise ConfigError(f'need 0 < min_depth < max_depth, got {min_depth}, {max_depth}')
        self.filter = ScaleFilter(filter_config)
        self.trajectory = MetricTrajectory()
        self.pairing = ScalePairing(max_frames=pairing_frames)
        self.min_depth, self.max_depth = min_depth, max_depth
        self.reset_inflation = reset_inflation
        self.last_observation: Optional[ScaleObservation] = None

    @property
    def regime(self) -> ScaleRegime:
        state = self.filter.state
        if state is ScaleState.UNKNOWN:
            return ScaleRegime.DRO_UNITS
        return ScaleRegime.METRIC if self.filter.is_metric else ScaleRegime.CONVERGING

    @property
    def scale(self) -> float:
        """Current scale (1.0 while unknown: output stays in DRO units)."""
        return self.filter.scale if self.filter.state is not ScaleState.UNKNOWN else 1.0

    def on_frame(self, result: FrameResult, pair: bool = True) -> FrameResult:
        """A copy of ``result`` with depth, pose and covariance scaled by the current scale.

        Args:
            pair: keep this frame's depth until the metric answer for its stamp arrives; False for frames
                the metric model will not see (saves memory, changes nothing else).
        """
        if pair:
            matched = self.pairing.add_dro(result.stamp, pairing_view(result.depth),
                                           pairing_view(result.confidence))
            if matched is not None:          # the metric answer for this stamp came first
                self._observe(matched)
        if result.reset and self.filter.state is not ScaleState.UNKNOWN:
            self.filter.inflate(self.reset_inflation)
        s = self.scale
        log_sigma = self.filter.log_sigma if self.filter.state is not ScaleState.UNKNOWN else 1.0
        T = self.trajectory.update(result.T_world_cam, s, min(log_sigma, 1.0))
        return dataclasses.replace(result, depth=scale_depth(result.depth, s, self.min_depth, self.max_depth),
                                   T_world_cam=T, covariance=self.trajectory.covariance(result.covariance, s))

    def on_metric(self, stamp: float, metric_depth: np.ndarray) -> Optional[ScaleObservation]:
        """Feed the metric model's depth (metres) for the frame with ``stamp``.

        Returns the observation (valid or not, with its reason) once the DRO frame of that stamp is known,
        else None (the pair completes when :meth:`on_frame` sees the stamp).
        """
        pair = self.pairing.add_metric(stamp, metric_depth)
        return None if pair is None else self._observe(pair)

    def _observe(self, pair) -> ScaleObservation:
        stamp, dro, confidence, metric = pair
        obs = estimate_scale(dro, metric, confidence, stamp=stamp)
        self.filter.update(obs)
        self.last_observation = obs
        return obs

    def diagnostics(self) -> Dict[str, Any]:
        d = {'scale_regime': self.regime.value, 'scale': self.scale}
        d.update({f'scale_{k}': v for k, v in self.filter.diagnostics().items()})
        return d
