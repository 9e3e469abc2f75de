"""Metric depth for one image: a ZoeDepth model (released BEiT-L or the light one) plus routing with
hysteresis.

    metric = MetricDepthEstimator(MetricDepthConfig())          # the bundled light model
    pred = metric.predict(rgb)                                   # (H, W, 3) uint8 RGB
    pred.depth                                                   # (H, W) float32 metres, NaN invalid
    pred.route, pred.p_outdoor, pred.latency_ms

Two-head (NK) models route each frame with :class:`~dro_depth.metric.routing.RouteHysteresis`: the router's
probabilities for this frame update the smoothed route, and the head of that route produces the depth (so a
scene on the indoor/outdoor border does not switch heads every frame). ``domain`` forces a head. Single-head
models (N: indoor, K: outdoor) always use their own head.

Precision: ``fp32``, or ``bf16`` / ``fp16`` for the core (the backbone and decoder, where the time goes); the
metric head always runs in float32 because its bin and attractor arithmetic is sensitive. fp16 needs CUDA;
bf16 also runs on CPUs (fast only with AMX / AVX512-BF16).
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from dro_depth.device import resolve_device
from dro_depth.errors import ConfigError, DroDepthError
from .routing import DOMAINS, RouteHysteresis

__all__ = ['MetricDepthConfig', 'MetricDepthEstimator', 'MetricPrediction', 'BACKBONES', 'parse_resolution',
           'MetricInputError']

logger = logging.getLogger(__name__)

BACKBONES = ('auto', 'light', 'beit')
PRECISIONS = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
_HEAD_ROUTE = {'nyu': 'indoor', 'kitti': 'outdoor'}
_RESOLUTION_RE = re.compile(r'^\s*(\d+)\s*[xX]\s*(\d+)\s*$')


class MetricInputError(DroDepthError):
    """The image cannot be used (shape, type)."""


def parse_resolution(text: str) -> Optional[Tuple[int, int]]:
    """``'HxW'`` -> ``(H, W)`` (multiples of 32, 32..4096); ``''`` -> None (the model's own).

    Raises:
        ValueError: naming the rule that is broken.
    """
    if text is None or not str(text).strip():
        return None
    m = _RESOLUTION_RE.match(str(text))
    if not m:
        raise ConfigError(f"resolution must be 'HxW' (e.g. '192x256') or empty, got {text!r}")
    h, w = int(m.group(1)), int(m.group(2))
    if h % 32 or w % 32 or not (32 <= h <= 4096 and 32 <= w <= 4096):
        raise ConfigError(f'resolution {h}x{w}: height and width must be multiples of 32 in [32, 4096]')
    return h, w


@dataclass
class MetricDepthConfig:
    """Settings of :class:`MetricDepthEstimator` (the node's ``metric.*`` parameters map onto these).

    Attributes:
        checkpoint: light model (``.safetensors`` from ``dro-depth train``) or a released ZoeDepth file
            (``ZoeD_M12_{N,K,NK}.pt`` or ``.safetensors``); None = the bundled light model.
        backbone: 'auto' (from the file), 'light' or 'beit' (asserted against the file).
        domain: 'auto' (router with hysteresis), 'indoor' or 'outdoor' (forced head).
        resolution: network size ``(h, w)`` of the resize rule (aspect kept); None = the model's own.
        precision: 'fp32' | 'bf16' | 'fp16' (core only; fp16 needs CUDA).
        device: torch device ('auto' = CUDA when available).
        flip_aug: average with the mirrored image (doubles the latency; off by default).
        route_margin, route_min_consecutive, route_smoothing: see :class:`RouteHysteresis`.
        backend: 'auto' | 'torch' | 'openvino' | 'tensorrt' (:mod:`dro_depth.backends`); a compiled
            backend runs the whole model (core and head) with ``precision``; torch serves while it compiles.
        threads: CPU threads of the compiled engine (0 = all cores; give it its own budget beside DRO).
        engine_cache: folder for compiled engines (None = compile at every start).
    """

    checkpoint: Optional[str] = None
    backbone: str = 'auto'
    domain: str = 'auto'
    resolution: Optional[Tuple[int, int]] = None
    precision: str = 'fp32'
    device: str = 'auto'
    flip_aug: bool = False
    route_margin: float = 0.15
    route_min_consecutive: int = 5
    route_smoothing: float = 0.3
    backend: str = 'torch'
    threads: int = 0
    engine_cache: Optional[str] = None

    def __post_init__(self) -> None:
        from dro_depth.backends import BACKENDS
        if self.backend not in BACKENDS:
            raise ConfigError(f'backend must be one of {BACKENDS}, got {self.backend!r}')
        if self.backbone not in BACKBONES:
            raise ConfigError(f'backbone must be one of {BACKBONES}, got {self.backbone!r}')
        if self.domain not in DOMAINS:
            raise ConfigError(f'domain must be one of {DOMAINS}, got {self.domain!r}')
        if self.precision not in PRECISIONS:
            raise ConfigError(f'precision must be one of {tuple(PRECISIONS)}, got {self.precision!r}')
        if isinstance(self.resolution, str):
            self.resolution = parse_resolution(self.resolution)
        elif self.resolution is not None:
            parse_resolution(f'{self.resolution[0]}x{self.resolution[1]}')
            self.resolution = (int(self.resolution[0]), int(self.resolution[1]))


@dataclass
class MetricPrediction:
    """One image's metric depth.

    Attributes:
        depth: ``(H, W)`` float32 metres at the input size, NaN where not usable.
        route: 'indoor' or 'outdoor': the head that produced ``depth``.
        p_outdoor: the router's raw probability of 'outdoor' for this frame (NaN for single-head models).
        route_probability: smoothed probability of the chosen route (NaN for single-head models).
        latency_ms: wall time of :meth:`MetricDepthEstimator.predict`.
    """

    depth: np.ndarray
    route: str
    p_outdoor: float
    route_probability: float
    latency_ms: float


def _is_light_file(path: Path) -> bool:
    from dro_depth.models.checkpoints import _is_safetensors
    if not _is_safetensors(path):
        return False
    from safetensors import safe_open
    with safe_open(str(path), framework='pt') as f:
        meta = f.metadata() or {}
    from dro_depth.models.metric.light import LIGHT_FORMAT
    return meta.get('format', '').strip('"') == LIGHT_FORMAT


class MetricDepthEstimator:
    """Loads a metric-depth model once and answers :meth:`predict` per image (not thread-safe: one caller).

    Raises:
        FileNotFoundError: the checkpoint does not exist, or none is given and none is bundled.
        CheckpointError: the file is not a metric model / does not match ``backbone``.
        ValueError: a bad setting (fp16 without CUDA, unknown domain, ...).
    """

    def __init__(self, config: MetricDepthConfig | None = None) -> None:
        self.config = cfg = config or MetricDepthConfig()
        self.device = resolve_device(cfg.device)
        if cfg.precision == 'fp16' and self.device.type != 'cuda':
            raise ConfigError(f'metric precision fp16 needs a CUDA device (device is {self.device}); use bf16 '
                             'or fp32 on CPU')
        path = self._checkpoint_path(cfg.checkpoint)
        self.checkpoint = path
        self.backbone = 'light' if _is_light_file(path) else 'beit'
        if cfg.backbone not in ('auto', self.backbone):
            from dro_depth.models.checkpoints import CheckpointError
            raise CheckpointError(f'{path} holds a {self.backbone} metric model but backbone is '
                                  f'{cfg.backbone!r} (use auto)')
        t0 = time.perf_counter()
        if self.backbone == 'light':
            from dro_depth.models.metric.light import load_light_zoedepth
            self.model, meta = load_light_zoedepth(path, device=self.device)
            self.trained_on = str(meta.get('trained_on', ''))
            self.pad_input = bool(meta.get('pad_input', False))
        else:
            from dro_depth.models.metric.zoedepth import load_zoedepth
            self.model = load_zoedepth(path, device=self.device)
            self.trained_on = 'released ZoeDepth checkpoint'
            self.pad_input = True                    # the official infer() pads
        if cfg.resolution is not None:
            self.model.img_size = cfg.resolution
        self.compiled = self._compile(cfg)
        if cfg.precision != 'fp32' and self.compiled is None:
            self.model.core.to(PRECISIONS[cfg.precision])
        self.model.eval()
        self.multi_head = bool(self.model.config.multi_head)
        self.variant = self.model.variant
        own = _HEAD_ROUTE[self.model.domain_names[0]]
        self.routing = RouteHysteresis(cfg.domain if self.multi_head else own, cfg.route_margin,
                                       cfg.route_min_consecutive, cfg.route_smoothing)
        self.max_depth = max(d.max_depth for d in self.model.config.domains)
        logger.info('metric model %s (%s, ZoeDepth %s head%s) on %s, %s, network %dx%d, loaded in %.1f s',
                    path, self.backbone, self.variant, 's + router' if self.multi_head else '', self.device,
                    cfg.precision, self.model.img_size[0], self.model.img_size[1], time.perf_counter() - t0)

    def _compile(self, cfg: MetricDepthConfig):
        """A :class:`CompiledMetricModel` for ``cfg.backend``, or None for torch (one WARN on a fallback)."""
        from dro_depth.backends import check_precision, resolve_backend, unavailable_reason
        from .compiled_model import CompiledMetricModel

        backend = resolve_backend(cfg.backend, self.device)
        self.backend_fallback = ''
        if backend == 'torch':
            return None
        if backend == 'openvino' and cfg.precision == 'fp16':
            backend = 'torch' if cfg.backend == 'auto' else backend
        reason = unavailable_reason(backend, self.device)
        if not reason and backend != 'torch':
            check_precision(backend, cfg.precision)
            return CompiledMetricModel(self.model, backend=backend, precision=cfg.precision,
                                       device=self.device, threads=cfg.threads, cache_dir=cfg.engine_cache)
        if reason:
            self.backend_fallback = f'backend {backend} is not available: {reason}'
            logger.warning('metric model falls back to torch: %s', self.backend_fallback)
        return None

    def close(self, timeout: float = 60.0) -> bool:
        """Stop background engine compiles (bounded wait); call before exiting."""
        return self.compiled.close(timeout) if self.compiled is not None else True

    @staticmethod
    def _checkpoint_path(checkpoint: Optional[str]) -> Path:
        if checkpoint:
            path = Path(checkpoint).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f'metric checkpoint not found: {path}')
            return path
        from dro_depth.weights import default_metric_checkpoint
        path = default_metric_checkpoint()
        if path is None:
            raise FileNotFoundError('no metric checkpoint given and the package ships no default metric '
                                    'model (train one: dro-depth train '
                                    '--config dro_depth/configs/metric_default.yaml)')
        return path

    @property
    def domain(self) -> str:
        return self.routing.domain

    @domain.setter
    def domain(self, value: str) -> None:
        """Force a head ('indoor' / 'outdoor') or follow the router ('auto'); two-head models only."""
        if self.multi_head:
            self.routing.domain = value
        elif value not in DOMAINS:
            raise ConfigError(f'domain must be one of {DOMAINS}, got {value!r}')

    def _to_tensor(self, image: np.ndarray) -> torch.Tensor:
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            shape = getattr(image, 'shape', None)
            raise MetricInputError('image must be an (H, W, 3) RGB array, got '
                                   f'{type(image).__name__} {shape}')
        if image.shape[0] < 8 or image.shape[1] < 8:
            raise MetricInputError(f'image of {image.shape[1]}x{image.shape[0]} is too small')
        if image.dtype == np.uint8:
            x = (torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
                 .permute(2, 0, 1)[None].float() / 255)
        elif image.dtype in (np.float32, np.float64):
            if not np.all(np.isfinite(image)):
                raise MetricInputError('image has NaN or inf values')
            x = (torch.from_numpy(np.ascontiguousarray(image, np.float32)).to(self.device)
                 .permute(2, 0, 1)[None])
            x = x.clamp(0.0, 1.0)
        else:
            raise MetricInputError(f'image dtype must be uint8 or float in [0, 1], got {image.dtype}')
        return x

    @torch.inference_mode()
    def predict(self, image: np.ndarray) -> MetricPrediction:
        """Metric depth of one RGB image (see :class:`MetricPrediction`)."""
        t0 = time.perf_counter()
        x = self._to_tensor(image)
        seen: Dict[str, Any] = {}

        def choose(probs: torch.Tensor):
            if 'route' not in seen:          # the flipped pass reuses the first pass's route
                p = probs[0].float().cpu().numpy().astype(np.float64)
                seen['p_outdoor'] = float(p[1] / p.sum())
                seen['route'] = self.routing.update(p / p.sum())
            return [seen['route']]

        if self.compiled is not None:
            metric, head = self.compiled.infer(x, choose if self.multi_head else None,
                                               guess=self.routing.head, pad_input=self.pad_input,
                                               with_flip_aug=self.config.flip_aug)
        else:
            out = self.model.infer(x, choose if self.multi_head else None, pad_input=self.pad_input,
                                   with_flip_aug=self.config.flip_aug)
            metric, head = out.metric_depth, out.route[0]
        depth = metric[0, 0].float().cpu().numpy()
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
        route = _HEAD_ROUTE[head]
        return MetricPrediction(depth=depth, route=route, p_outdoor=seen.get('p_outdoor', float('nan')),
                                route_probability=(self.routing.probability if self.multi_head
                                                   else float('nan')),
                                latency_ms=(time.perf_counter() - t0) * 1e3)

    def diagnostics(self) -> Dict[str, Any]:
        d = {'metric_backbone': self.backbone, 'metric_variant': self.variant,
             'metric_checkpoint': str(self.checkpoint), 'metric_precision': self.config.precision,
             'metric_network_size': f'{self.model.img_size[0]}x{self.model.img_size[1]}',
             'metric_backend_requested': self.config.backend,
             'metric_engine': 'torch' if self.compiled is None else self.compiled.serving,
             'metric_compile_s': round(self.compiled.info.compile_s, 2) if self.compiled is not None
             and self.compiled.info is not None else 0.0,
             'metric_backend_fallback': (self.backend_fallback
                                         or getattr(self.compiled, 'fallback_reason', ''))}
        r = self.routing.diagnostics()
        d.update({'route': r['route'], 'route_domain': r['domain'], 'route_probability': r['probability'],
                  'route_p_outdoor_smoothed': r['p_outdoor_smoothed'], 'route_switches': r['switches']})
        return d
