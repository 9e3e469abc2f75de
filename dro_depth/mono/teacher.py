"""A pseudo-label teacher: any single-image depth model of this package, as ``image -> inverse depth``.

:func:`load_teacher` recognises the file:

* a light metric model (``dro_depth.metric_light`` header, e.g. the bundled
  ``dro_depth/weights/metric_default.safetensors``, trained here on synthetic scenes): ``1 / metric depth``;
* a light relative-depth model (``dro_depth.mono_light``, a student of :mod:`dro_depth.training.mono`): its
  output;
* anything else is loaded as a released Depth Anything V2 checkpoint (``encoder``, ``metric``,
  ``max_depth`` as for :class:`~dro_depth.mono.estimator.MonoDepthEstimator`): relative output as it is,
  metric output inverted.

Every teacher returns float32 ``(H, W)`` inverse depth at the image size, affine-invariant (only relative
values matter), NaN where it has no answer.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np
import torch

from dro_depth.device import resolve_device
from dro_depth.errors import DroDepthError

__all__ = ['Teacher', 'load_teacher']


class Teacher:
    """``teacher(image uint8 (H, W, 3) RGB) -> float32 (H, W)`` inverse depth; ``describe()`` for the index."""

    def __init__(self, kind: str, path: str, run: Callable[[np.ndarray], np.ndarray], **info: Any) -> None:
        self.kind, self.path, self._run, self.info = kind, path, run, info

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise DroDepthError('a teacher expects uint8 (H, W, 3) RGB images')
        return np.asarray(self._run(image), np.float32)

    def describe(self) -> Dict[str, Any]:
        return {'kind': self.kind, 'path': self.path, **self.info}


def _tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).to(device)


def _inverse(depth: np.ndarray, min_depth: float = 1e-3) -> np.ndarray:
    out = 1.0 / np.maximum(depth, min_depth)
    return np.where(np.isfinite(depth) & (depth > 0), out, np.nan).astype(np.float32)


def load_teacher(path: str | Path, *, encoder: str = 'vits', metric: bool = False, max_depth: float = 20.0,
                 input_size: int = 518, device: str = 'auto') -> Teacher:
    """The teacher in ``path`` (see the module docstring).

    Raises:
        FileNotFoundError: no such file. CheckpointError / DroDepthError: not a model this package can load.
    """
    from dro_depth.models.checkpoints import load_weights_file
    from dro_depth.models.metric.light import LIGHT_FORMAT, load_light_zoedepth
    from dro_depth.models.mono_light import MONO_LIGHT_FORMAT, load_light_relative

    path = Path(path)
    dev = resolve_device(device)
    _, meta = load_weights_file(path)
    fmt = meta.get('format')
    if fmt == LIGHT_FORMAT:
        model, meta = load_light_zoedepth(path, device=dev)

        @torch.no_grad()
        def run(image: np.ndarray) -> np.ndarray:
            depth = model.infer(_tensor(image, dev), pad_input=False).metric_depth[0, 0]
            return _inverse(depth.float().cpu().numpy())
        return Teacher('light_metric', str(path), run, variant=meta.get('variant'),
                       img_size=meta.get('img_size'), output='1 / metric depth')
    if fmt == MONO_LIGHT_FORMAT:
        rel, meta = load_light_relative(path, device=dev)
        return Teacher('light_relative', str(path),
                       lambda image: rel.infer(_tensor(image, dev))[0, 0].float().cpu().numpy(),
                       img_size=meta.get('img_size'), output='relative inverse depth')
    from .estimator import MonoDepthConfig, MonoDepthEstimator

    est = MonoDepthEstimator(MonoDepthConfig(checkpoint=str(path), encoder=encoder, metric=metric,
                                             max_depth=max_depth, input_size=input_size, device=str(dev)))

    def run_da(image: np.ndarray) -> np.ndarray:
        pred = est.predict(image)
        return _inverse(pred.depth) if pred.depth is not None else pred.relative
    return Teacher('depth_anything_v2', str(path), run_da, encoder=encoder, metric=metric,
                   input_size=input_size,
                   output='1 / metric depth' if metric else 'relative inverse depth')
