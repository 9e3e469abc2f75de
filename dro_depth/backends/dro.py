"""DRO compiled for a backend at one size, reference count and iteration count: :func:`compile_dro`.

The exported graph is ``DRONet.forward`` with ``iterations`` fixed (the GRU loop unrolled), taking
``target (B,3,H,W)``, ``refs (B,N,3,H,W)``, ``K (B,3,3)`` and returning the final inverse depth, poses and
confidence. Cached reference features are not an input: every call encodes its references.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from dro_depth.errors import DroDepthError
from .compile import CompiledModule, compile_module
from .info import BackendInfo

__all__ = ['CompiledDRO', 'DROEngineOutput', 'compile_dro']


@dataclass
class DROEngineOutput:
    """What a compiled DRO returns (the fields of ``DROOutput`` the estimator reads).

    Attributes:
        inv_depth: float32 (B, 1, H, W) final inverse depth.
        poses: float32 (B, N, 6) [tx, ty, tz, rx, ry, rz], X_ref = R X_tgt + t.
        confidence: float32 (B, 1, H, W) in [0, 1], or None when ``iterations`` is 0.
    """

    inv_depth: Tensor
    poses: Tensor
    confidence: Optional[Tensor] = None


class _DROGraph(nn.Module):
    """``DRONet`` with a fixed iteration count and tensor outputs (the exported function)."""

    def __init__(self, model: nn.Module, iterations: int) -> None:
        super().__init__()
        self.model = model
        self.iterations = iterations

    def forward(self, target: Tensor, refs: Tensor, K: Tensor) -> Tuple[Tensor, ...]:
        out = self.model(target, refs, K, iterations=self.iterations)
        if out.confidence is None:
            return out.inv_depth, out.poses
        return out.inv_depth, out.poses, out.confidence


class CompiledDRO:
    """Call as ``run(target, refs, K)``; see :func:`compile_dro`."""

    def __init__(self, compiled: CompiledModule, height: int, width: int, num_refs: int, iterations: int,
                 batch: int) -> None:
        self._compiled = compiled
        self.height, self.width, self.num_refs = height, width, num_refs
        self.iterations, self.batch = iterations, batch

    @property
    def info(self) -> BackendInfo:
        return self._compiled.info

    def __call__(self, target: Tensor, refs: Tensor, K: Tensor) -> DROEngineOutput:
        """Args: target float32 (B, 3, H, W) RGB in [0, 1]; refs (B, N, 3, H, W); K (B, 3, 3) or (3, 3)."""
        b, n, h, w = self.batch, self.num_refs, self.height, self.width
        if isinstance(refs, (list, tuple)):
            refs = torch.stack(list(refs), dim=1)
        if K.dim() == 2:
            K = K.unsqueeze(0)
        K = K.to(torch.float32).expand(b, 3, 3)
        if tuple(target.shape) != (b, 3, h, w) or tuple(refs.shape) != (b, n, 3, h, w):
            raise DroDepthError(f'this DRO engine takes target [{b},3,{h},{w}] and refs [{b},{n},3,{h},{w}], '
                                f'got {tuple(target.shape)} and {tuple(refs.shape)}; compile one for that '
                                'size / reference count')
        out = self._compiled(target.float(), refs.float(), K.contiguous())
        return DROEngineOutput(*out)


def compile_dro(model: nn.Module, *, backend: str = 'auto', precision: str = 'fp32', height: int, width: int,
                num_refs: int, iterations: int, batch: int = 1, device: str | torch.device = 'cpu',
                threads: int = 0, cache_dir: str | Path | None = None, strict: bool = False) -> CompiledDRO:
    """Compile a ``DRONet`` for one input size, reference count and iteration count.

    Args:
        model: the network (eval mode, float32). Not modified.
        backend: 'auto' | 'torch' | 'openvino' | 'tensorrt'.
        precision: 'fp32' | 'bf16' (OpenVINO, TensorRT, torch CUDA) | 'fp16' (TensorRT, torch CUDA).
        height, width: network input size (multiples of 16).
        num_refs: references N per call; iterations: GRU steps (0 = the single-view heads only).
        batch: B.
        device: where the outputs are used ('cpu'; 'xpu' for OpenVINO on an Intel GPU; 'cuda').
        threads: the engine's CPU threads (OpenVINO; 0 = all cores).
        cache_dir: engine cache (None: no disk cache).
        strict: raise :class:`~dro_depth.backends.info.BackendError` instead of falling back to torch.

    Returns:
        :class:`CompiledDRO`; ``run.info`` says which backend runs and why it is not the requested one.
    """
    for label, value, low in (('height', height, 16), ('width', width, 16)):
        if not isinstance(value, int) or value < low or value % 16:
            raise DroDepthError(f'{label} must be a positive multiple of 16, got {value!r}')
    for label, value, low in (('num_refs', num_refs, 1), ('iterations', iterations, 0), ('batch', batch, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise DroDepthError(f'{label} must be an integer >= {low}, got {value!r}')
    graph = _DROGraph(model, iterations).eval()
    dev = torch.device(device)
    target = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
    refs = torch.rand(batch, num_refs, 3, height, width, generator=torch.Generator().manual_seed(1))
    K = torch.tensor([[0.9 * width, 0.0, width / 2], [0.0, 0.9 * width, height / 2], [0.0, 0.0, 1.0]])
    K = K.expand(batch, 3, 3).contiguous()
    compiled = compile_module(graph, (target, refs, K), backend=backend, precision=precision, device=dev,
                              threads=threads, cache_dir=cache_dir, input_names=('target', 'refs', 'K'),
                              name=f'dro_{height}x{width}_n{num_refs}_it{iterations}_b{batch}', strict=strict)
    return CompiledDRO(compiled, height, width, num_refs, iterations, batch)
