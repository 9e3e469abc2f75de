"""Metric depth from Depth Anything V2: indoor (Hypersim, 20 m) and outdoor (Virtual KITTI, 80 m)
checkpoints routed per frame.

    est = DepthAnythingMetricEstimator(DepthAnythingMetricConfig(
        indoor='depth_anything_v2_metric_hypersim_vits.pth',
        outdoor='depth_anything_v2_metric_vkitti_vits.pth'))
    pred = est.predict(rgb)          # MetricPrediction, as MetricDepthEstimator.predict

The route comes from :class:`~dro_depth.metric.domain_router.DomainRouter` (the bundled light ZoeDepth NK
router, held-out synthetic accuracy in the README) through the same
:class:`~dro_depth.metric.routing.RouteHysteresis`; only the chosen checkpoint runs on each frame. A forced
``domain`` (or a single checkpoint) skips the router. Relative checkpoints (same keys as metric ones) are
refused by name: they give affine-invariant inverse depth, which cannot set the metric scale.

Backend hook: the models run in torch; ``dro_depth.backends`` compiles DRO and ZoeDepth only so far.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from dro_depth.errors import ConfigError, DroDepthError
from dro_depth.models.checkpoints import CheckpointError
from dro_depth.models.depth_anything.released import MAX_DEPTH, checkpoint_kind
from .depth_estimator import MetricInputError, MetricPrediction
from .routing import DOMAINS, RouteHysteresis

__all__ = ['DepthAnythingMetricConfig', 'DepthAnythingMetricEstimator', 'checkpoint_kind', 'MAX_DEPTH']

logger = logging.getLogger(__name__)

@dataclass
class DepthAnythingMetricConfig:
    """Settings (the node's ``metric.*`` parameters with ``metric.backbone: depth_anything``).

    Attributes:
        indoor / outdoor: metric checkpoints (at least one). encoder: 'vits' | 'vitb' | 'vitl'.
        input_size: lower bound of the network sides (518 released). precision: 'fp32' | 'bf16'.
        domain: 'auto' (router with hysteresis), 'indoor' or 'outdoor'.
        router: light NK ZoeDepth file for the routing signal (None = the bundled one).
        route_margin, route_min_consecutive, route_smoothing: see :class:`RouteHysteresis`.
        depth / hooks: block-count / hook overrides (reduced models).
    """

    indoor: str | None = None
    outdoor: str | None = None
    encoder: str = 'vits'
    input_size: int = 518
    precision: str = 'fp32'
    device: str = 'auto'
    domain: str = 'auto'
    router: str | None = None
    route_margin: float = 0.15
    route_min_consecutive: int = 5
    route_smoothing: float = 0.3
    depth: int | None = None
    hooks: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ConfigError(f'domain must be one of {DOMAINS}, got {self.domain!r}')
        if not self.indoor and not self.outdoor:
            raise ConfigError('metric.backbone depth_anything needs a metric checkpoint: set the indoor '
                              '(Hypersim, 20 m) and/or outdoor (Virtual KITTI, 80 m) file')
        for route in ('indoor', 'outdoor'):
            path = getattr(self, route)
            kind = checkpoint_kind(path) if path else None
            if kind == 'relative':
                raise ConfigError(f'{path} is a relative Depth Anything checkpoint (affine-invariant inverse '
                                  'depth, no metres): it cannot feed the metric scale; use a metric '
                                  '(hypersim / vkitti) checkpoint, or mono_depth_node for relative depth')
            if kind is not None and kind != route:
                raise ConfigError(f'{path} looks like the {kind} checkpoint but is configured as {route}')
        if self.domain != 'auto' and not getattr(self, self.domain):
            raise ConfigError(f'domain {self.domain!r} is forced but no {self.domain} checkpoint is set')


class DepthAnythingMetricEstimator:
    """Routed Depth Anything V2 metric depth with :class:`MetricDepthEstimator`'s ``predict`` API."""

    backbone = 'depth_anything'

    def __init__(self, config: DepthAnythingMetricConfig) -> None:
        from dro_depth.mono import MonoDepthConfig, MonoDepthEstimator
        self.config = cfg = config
        self.models: dict[str, MonoDepthEstimator] = {}
        for route in ('indoor', 'outdoor'):
            path = getattr(cfg, route)
            if path:
                self.models[route] = MonoDepthEstimator(MonoDepthConfig(
                    checkpoint=path, encoder=cfg.encoder, metric=True, max_depth=MAX_DEPTH[route],
                    input_size=cfg.input_size, precision=cfg.precision, device=cfg.device, depth=cfg.depth,
                    hooks=cfg.hooks))
        only = next(iter(self.models)) if len(self.models) == 1 else None
        domain = only or cfg.domain
        self.router = None
        if domain == 'auto':
            from .domain_router import DomainRouter
            self.router = DomainRouter(cfg.router, device=next(iter(self.models.values())).device)
        self.routing = RouteHysteresis(domain, cfg.route_margin, cfg.route_min_consecutive,
                                       cfg.route_smoothing)
        self.max_depth = max(MAX_DEPTH[r] for r in self.models)
        self.runs = {r: 0 for r in self.models}
        logger.info('Depth Anything metric: %s, routing %s', ', '.join(self.models), domain)

    @property
    def domain(self) -> str:
        return self.routing.domain

    @domain.setter
    def domain(self, value: str) -> None:
        """Force 'indoor' / 'outdoor' or follow the router ('auto'); a route whose checkpoint is not loaded
        (or 'auto' without the router) is ignored with a warning (the node sets this at run time)."""
        if value not in DOMAINS:
            raise ConfigError(f'domain must be one of {DOMAINS}, got {value!r}')
        if (value != 'auto' and value not in self.models) or (value == 'auto' and self.router is None):
            logger.warning('metric.domain %s ignored: loaded checkpoints %s%s', value, ', '.join(self.models),
                           '' if self.router else ' (no router: started with one route)')
            return
        self.routing.domain = value

    def predict(self, image: np.ndarray) -> MetricPrediction:
        """Metric depth of one ``uint8 (H, W, 3)`` RGB image; only the routed checkpoint runs."""
        t0 = time.perf_counter()
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
            desc = f'{image.dtype} {image.shape}' if isinstance(image, np.ndarray) else type(image).__name__
            raise MetricInputError(f'image must be a uint8 (H, W, 3) RGB array, got {desc}')
        p_out = float('nan')
        if self.router is not None:
            probs = self.router.probabilities(image)
            p_out = float(probs[1])
            route = self.routing.update(probs)
        else:
            route = self.routing.route
        try:
            pred = self.models[route].predict(image)
        except DroDepthError as exc:          # too small for the network
            raise MetricInputError(str(exc)) from exc
        self.runs[route] += 1
        depth = np.where(np.isfinite(pred.depth) & (pred.depth > 0), pred.depth, np.nan).astype(np.float32)
        return MetricPrediction(depth=depth, route=route, p_outdoor=p_out,
                                route_probability=self.routing.probability if self.router else float('nan'),
                                latency_ms=(time.perf_counter() - t0) * 1e3)

    def summary(self) -> str:
        """One line for the start-up log: checkpoints, encoder, device, precision, input size, routing."""
        first = next(iter(self.models.values()))
        files = ', '.join(f'{r} {getattr(self.config, r)}' for r in self.models)
        return (f'Depth Anything V2 {self.config.encoder} metric on {first.device} '
                f'({self.config.precision}), '
                f'input >= {self.config.input_size} px, domain {self.domain}; {files}')

    def diagnostics(self) -> dict[str, Any]:
        r = self.routing.diagnostics()
        return {'metric_backbone': self.backbone, 'metric_variant': f'DA-V2 {self.config.encoder}',
                'metric_checkpoint': ', '.join(f'{k}={getattr(self.config, k)}' for k in self.models),
                'metric_precision': self.config.precision, 'metric_engine': 'torch',
                'metric_runs': ' '.join(f'{k}={v}' for k, v in self.runs.items()),
                'route': r['route'], 'route_domain': r['domain'],
                'route_probability': r['probability'], 'route_p_outdoor_smoothed': r['p_outdoor_smoothed'],
                'route_switches': r['switches']}
