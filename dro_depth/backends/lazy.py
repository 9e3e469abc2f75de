"""A module that compiles its wrapped network on first use of each input shape (e.g. a metric core
whose network size follows the camera's aspect ratio).

    model.core = ShapeCompiledModule(model.core, backend='openvino', precision='bf16', threads=1,
                                     name='metric_core')
    model.infer(image)      # the first call per shape compiles (logged with its time), later calls run

Reuse it for any network called with fixed shapes per camera (Depth Anything, stereo).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from .compile import CompiledModule, compile_module
from .info import BackendInfo

__all__ = ['ShapeCompiledModule', 'compile_core']

logger = logging.getLogger(__name__)


class ShapeCompiledModule(nn.Module):
    """Calls ``module`` through a :class:`CompiledModule` per input shape.

    The wrapped network is held outside the module tree (no parameters here), so code that reads the
    parameters' dtype to cast inputs sees float32 input. Not trainable; inference only.

    Args:
        module: the network (eval mode).
        backend, precision, device, threads, cache_dir, strict: as :func:`compile_module`.
        name: label in logs and cache keys.
        max_shapes: compiled shapes kept (the oldest is dropped beyond).
    """

    def __init__(self, module: nn.Module, *, backend: str, precision: str = 'fp32',
                 device: str | torch.device = 'cpu', threads: int = 0, cache_dir: str | Path | None = None,
                 name: str = 'module', strict: bool = False, max_shapes: int = 4) -> None:
        super().__init__()
        self.__dict__['wrapped'] = module.eval()
        self._args = dict(backend=backend, precision=precision, device=device, threads=threads,
                          cache_dir=cache_dir, name=name, strict=strict)
        self.max_shapes = max_shapes
        self._compiled: Dict[Tuple[tuple, ...], CompiledModule] = {}
        self._lock = threading.Lock()
        self.last_info: Optional[BackendInfo] = None

    def __getattr__(self, item: str) -> Any:
        try:
            return super().__getattr__(item)
        except AttributeError:
            return getattr(self.__dict__['wrapped'], item)

    def forward(self, *inputs: Tensor) -> Any:
        key = tuple(tuple(t.shape) for t in inputs)
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                compiled = compile_module(self.wrapped, [t.float().cpu() for t in inputs], **self._args)
                if len(self._compiled) >= self.max_shapes:
                    self._compiled.pop(next(iter(self._compiled)))
                self._compiled[key] = compiled
        self.last_info = compiled.info
        return compiled(*[t.float() for t in inputs])


def compile_core(model: nn.Module, *, backend: str, precision: str = 'fp32',
                 device: str | torch.device = 'cpu', threads: int = 0, cache_dir: str | Path | None = None,
                 strict: bool = False,
                 name: str = 'core') -> nn.Module:
    """Replace ``model.core`` (a ZoeDepth-style backbone + decoder) by a :class:`ShapeCompiledModule`.

    The metric head stays in torch float32 (its bin arithmetic and per-frame routing are not graph-shaped).
    Returns ``model`` (changed in place). A ``torch`` backend leaves the model as it is.
    """
    if backend == 'torch':
        return model
    core = model.core
    if isinstance(core, ShapeCompiledModule):
        core = core.wrapped
    model.core = ShapeCompiledModule(core.float(), backend=backend, precision=precision, device=device,
                                     threads=threads, cache_dir=cache_dir, name=name, strict=strict)
    return model
