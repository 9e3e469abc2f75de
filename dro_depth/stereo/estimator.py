"""Stereo depth estimator: a rectified left/right pair + calibration -> disparity and metric depth."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from dro_depth.errors import DroDepthError

from .calibration import StereoCalibration

if TYPE_CHECKING:
    from dro_depth.models.stereo import RAFTStereo

__all__ = ['StereoConfig', 'StereoEstimator', 'StereoResult', 'StereoInputError', 'default_stereo_weights']

logger = logging.getLogger(__name__)


class StereoInputError(DroDepthError):
    """A stereo pair the estimator cannot use (shapes, dtypes, sizes)."""


def default_stereo_weights() -> Path:
    """The bundled default stereo model (RAFT-Stereo realtime layout trained on synthetic triplets)."""
    return Path(__file__).resolve().parents[1] / 'weights' / 'stereo_default.safetensors'


@dataclass(frozen=True)
class StereoConfig:
    """Estimator settings.

    Attributes:
        iterations: GRU iterations (the latency/accuracy knob; 32 = official evaluation).
        max_width: the pair is downscaled to at most this width before the network (0 = full size);
            disparity is scaled back to input pixels.
        min_disparity: pixels; depth is NaN at or below it.
        device: torch device.
        backend: 'torch' (eager) or a :mod:`dro_depth.backends` name ('openvino', 'auto', ...): compiled
            per input size and iteration count, falling back to torch with a warning.
    """

    iterations: int = 12
    max_width: int = 0
    min_disparity: float = 0.5
    device: str = 'cpu'
    backend: str = 'torch'

    def __post_init__(self) -> None:
        if not 1 <= int(self.iterations) <= 64:
            raise DroDepthError(f'iterations must be 1..64, got {self.iterations}')
        if self.max_width and self.max_width < 32:
            raise DroDepthError(f'max_width must be 0 or >= 32, got {self.max_width}')


@dataclass
class StereoResult:
    """Output for one pair.

    Attributes:
        disparity: float32 (H, W) left-view disparity, input pixels, NaN invalid.
        depth: float32 (H, W) metres, NaN invalid (REP 118).
        latency_ms: network + pre/post-processing wall time.
        iterations: GRU iterations used.
    """

    disparity: np.ndarray
    depth: np.ndarray
    latency_ms: float
    iterations: int


def _to_tensor(image: np.ndarray, name: str) -> torch.Tensor:
    if image.ndim != 3 or image.shape[2] != 3:
        raise StereoInputError(f'{name} image must be (H, W, 3) RGB, got shape {image.shape}')
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()


class StereoEstimator:
    """Rectified stereo -> disparity -> depth with a RAFT-Stereo network.

    Args:
        model: the network (eval mode). When None, the bundled default is loaded.
        config: :class:`StereoConfig`.
    """

    def __init__(self, model: RAFTStereo | None = None, config: StereoConfig = StereoConfig()) -> None:
        if model is None:
            from dro_depth.models.stereo import load_raft_stereo
            model = load_raft_stereo(default_stereo_weights(), device=config.device)
        self.model = model.eval().to(config.device)
        self.config = config
        self._compiled: dict[tuple, object] = {}

    def set_iterations(self, iterations: int) -> None:
        """Change the iteration count (takes effect on the next pair)."""
        self.config = replace(self.config, iterations=int(iterations))

    def estimate(self, left: np.ndarray, right: np.ndarray, calib: StereoCalibration) -> StereoResult:
        """Disparity and depth of the left view.

        Args:
            left, right: uint8 (H, W, 3) RGB rectified images of one size.
            calib: :class:`StereoCalibration` of the pair at this size.

        Raises:
            StereoInputError: shapes differ or are not (H, W, 3); size differs from the calibration's.
        """
        if left.shape != right.shape:
            raise StereoInputError(f'left {left.shape} and right {right.shape} images differ in size')
        h, w = left.shape[:2]
        if calib.width and (calib.width, calib.height) != (w, h):
            raise StereoInputError(f'images are {w}x{h} but the camera_info says '
                                   f'{calib.width}x{calib.height}')
        t0 = time.perf_counter()
        lt, rt = _to_tensor(left, 'left'), _to_tensor(right, 'right')
        scale = 1.0
        if self.config.max_width and w > self.config.max_width:
            scale = self.config.max_width / w
            size = (max(32, round(h * scale)), self.config.max_width)
            lt = F.interpolate(lt, size=size, mode='bilinear', align_corners=False, antialias=True)
            rt = F.interpolate(rt, size=size, mode='bilinear', align_corners=False, antialias=True)
        disp = self._network_disparity(lt.to(self.config.device), rt.to(self.config.device))
        if scale != 1.0:
            disp = F.interpolate(disp, size=(h, w), mode='bilinear', align_corners=False) * (w / lt.shape[-1])
        d = disp[0, 0].detach().float().cpu().numpy()
        d = np.where(d > self.config.min_disparity, d, np.nan).astype(np.float32)
        depth = calib.depth_from_disparity(d, self.config.min_disparity)
        return StereoResult(disparity=d, depth=depth, latency_ms=1000 * (time.perf_counter() - t0),
                            iterations=self.config.iterations)

    @torch.no_grad()
    def _network_disparity(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """float (1, 1, h, w) positive disparity at network resolution."""
        iters = self.config.iterations
        if self.config.backend == 'torch':
            return self.model.disparity(left, right, iters=iters)
        from dro_depth.models.stereo import InputPadder
        padder = InputPadder(left.shape)
        lp, rp = padder.pad(left, right)
        key = (tuple(lp.shape), iters)
        if key not in self._compiled:
            from dro_depth.backends import compile_module
            model = self.model
            self._compiled[key] = compile_module(
                model, [lp, rp], backend=self.config.backend, device=self.config.device, name='raft_stereo',
                call=lambda a, b: model(a, b, iters=iters, test_mode=True)[1])
        return -padder.unpad(self._compiled[key](lp, rp))
