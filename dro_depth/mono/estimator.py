"""MonoDepthEstimator: one RGB image -> Depth Anything V2 metric depth or relative inverse depth.

Preprocessing and the resize back follow the official ``image2tensor`` / ``infer_image``
(:mod:`dro_depth.models.depth_anything.preprocess`). Precision ``bf16`` runs the network under CPU/CUDA
autocast; the output is always float32.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dro_depth.device import resolve_device
from dro_depth.errors import DroDepthError
from dro_depth.models.depth_anything import (ENCODERS, DepthAnythingV2, image_to_tensor, load_depth_anything,
                                             resize_back)

__all__ = ['MonoDepthConfig', 'MonoDepthEstimator', 'MonoPrediction', 'PRECISIONS']

logger = logging.getLogger(__name__)

PRECISIONS = ('fp32', 'bf16')


@dataclass
class MonoDepthConfig:
    """Settings of :class:`MonoDepthEstimator` (the node's parameters map onto these).

    Attributes:
        checkpoint: a released (or locally trained) Depth Anything V2 file; required.
        encoder: 'vits' | 'vitb' | 'vitl'.
        metric: the checkpoint is metric (Hypersim 20 m / Virtual KITTI 80 m); relative otherwise.
        max_depth: metres of the metric checkpoint's sigmoid output 1.
        input_size: lower bound of both network sides (518 released; smaller is faster).
        precision: 'fp32' or 'bf16'.
        device: torch device ('auto' = CUDA when available).
        depth / hooks: block-count / hooked-block overrides (reduced models).
        backend: 'torch' or a :mod:`dro_depth.backends` backend ('auto', 'openvino', 'tensorrt'): the network
            is compiled once per network size on first use (falls back to torch with a WARN).
        threads: CPU threads of a compiled engine (0 = all cores). engine_cache: engine folder or None.
    """

    checkpoint: str | Path | Mapping | None = None
    encoder: str = 'vits'
    metric: bool = False
    max_depth: float = 20.0
    input_size: int = 518
    precision: str = 'fp32'
    device: str = 'auto'
    depth: int | None = None
    hooks: tuple[int, ...] | None = None
    backend: str = 'torch'
    threads: int = 0
    engine_cache: str | None = None

    def __post_init__(self) -> None:
        if self.checkpoint is None:
            raise DroDepthError('mono depth needs a Depth Anything V2 checkpoint (nothing is bundled); '
                                'set checkpoint to a .pth/.safetensors file')
        if self.encoder not in ENCODERS:
            raise DroDepthError(f'encoder must be one of {tuple(ENCODERS)}, got {self.encoder!r}')
        if self.precision not in PRECISIONS:
            raise DroDepthError(f'precision must be one of {PRECISIONS}, got {self.precision!r}')
        if isinstance(self.input_size, bool) or not isinstance(self.input_size, int) or \
                not 14 <= self.input_size <= 4096:
            raise DroDepthError(f'input_size must be an integer in [14, 4096], got {self.input_size!r}')
        from dro_depth.backends import BACKENDS
        if self.backend not in BACKENDS:
            raise DroDepthError(f'backend must be one of {BACKENDS}, got {self.backend!r}')
        if self.metric and not self.max_depth > 0:
            raise DroDepthError(f'max_depth must be > 0 metres, got {self.max_depth!r}')


@dataclass
class MonoPrediction:
    """One image's single-view depth.

    Attributes:
        depth: ``float32 (H, W)`` metres (metric checkpoints), else None.
        relative: ``float32 (H, W)`` affine-invariant inverse depth, larger = nearer (relative
            checkpoints), else None.
        network_size: ``(h, w)`` the network ran at.
        latency_ms: wall time of :meth:`MonoDepthEstimator.predict`.
    """

    depth: np.ndarray | None
    relative: np.ndarray | None
    network_size: tuple[int, int]
    latency_ms: float


class MonoDepthEstimator:
    """Depth Anything V2 on single images (see the module docstring)."""

    def __init__(self, config: MonoDepthConfig, model: DepthAnythingV2 | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        if model is None:
            model = load_depth_anything(config.checkpoint, encoder=config.encoder, metric=config.metric,
                                        max_depth=config.max_depth, depth=config.depth, hooks=config.hooks,
                                        device=self.device)
        self.model = model.eval()
        self.frames = 0
        self.engines: dict[tuple[int, ...], object] = {}     # compiled graphs per input shape

    @property
    def metric(self) -> bool:
        """True when :meth:`predict` gives metres."""
        return self.model.metric

    def network_input(self, image: np.ndarray) -> torch.Tensor:
        """``uint8 (H, W, 3)`` RGB -> normalised ``float32 (1, 3, h, w)`` (official preprocessing).

        Raises:
            DroDepthError: not a uint8 ``(H, W, 3)`` image, or a side below 14 px.
        """
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
                or image.shape[2] != 3:
            desc = f'{image.dtype} {image.shape}' if isinstance(image, np.ndarray) else type(image).__name__
            raise DroDepthError(f'mono depth expects a uint8 (H, W, 3) RGB image, got {desc}')
        return image_to_tensor(image, self.config.input_size, device=self.device)

    @torch.no_grad()
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Network on a normalised ``(B, 3, h, w)`` input -> ``float32 (B, h, w)``."""
        if self.config.backend != 'torch':
            return self._engine(x)(x).float()
        if self.config.precision == 'bf16':
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                out = self.model(x)
        else:
            out = self.model(x)
        return out.float()

    def _engine(self, x: torch.Tensor):
        """The compiled graph for ``x``'s shape (compiled on first use, in this thread)."""
        key = tuple(x.shape)
        if key not in self.engines:
            from dro_depth.backends import compile_module
            cfg = self.config
            self.engines[key] = compile_module(self.model, [x.float()], backend=cfg.backend,
                                               precision=cfg.precision, device=self.device,
                                               threads=cfg.threads, cache_dir=cfg.engine_cache,
                                               name=f'depth_anything_{cfg.encoder}')
        return self.engines[key]

    def predict(self, image: np.ndarray) -> MonoPrediction:
        """One ``uint8 (H, W, 3)`` RGB image -> :class:`MonoPrediction` at the image size."""
        t0 = time.perf_counter()
        x = self.network_input(image)
        out = resize_back(self.infer(x), image.shape[0], image.shape[1])[0]
        arr = out.cpu().numpy().astype(np.float32, copy=False)
        self.frames += 1
        ms = (time.perf_counter() - t0) * 1e3
        size = (int(x.shape[-2]), int(x.shape[-1]))
        if self.metric:
            return MonoPrediction(depth=arr, relative=None, network_size=size, latency_ms=ms)
        return MonoPrediction(depth=None, relative=arr, network_size=size, latency_ms=ms)
