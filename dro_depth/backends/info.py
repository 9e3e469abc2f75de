"""Backend names, precisions, availability checks and the description of a compiled network."""
from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from typing import Any, Dict

import torch

from dro_depth.errors import DroDepthError

__all__ = ['BACKENDS', 'PRECISIONS', 'BackendError', 'BackendInfo', 'resolve_backend', 'unavailable_reason',
           'check_precision']

BACKENDS = ('auto', 'torch', 'openvino', 'tensorrt')
#: precisions each concrete backend accepts (torch: fp16/bf16 only on CUDA, as autocast)
PRECISIONS = {'torch': ('fp32', 'fp16', 'bf16'), 'openvino': ('fp32', 'bf16'),
              'tensorrt': ('fp32', 'fp16', 'bf16')}


class BackendError(DroDepthError):
    """A backend cannot be used (not installed, no device, bad precision) or failed to compile a graph."""


@dataclass
class BackendInfo:
    """What runs a compiled network (shown in /diagnostics).

    Attributes:
        backend: the backend that runs ('torch', 'openvino', 'tensorrt').
        precision: its precision ('fp32', 'bf16', 'fp16').
        requested: the backend asked for (e.g. 'auto' or 'tensorrt').
        device: where it runs ('CPU', 'GPU', 'cuda:0', 'cpu').
        compile_s: seconds spent exporting and compiling (0 for torch; small for a cache hit).
        cache: 'hit', 'miss', 'rebuilt' (corrupt entry replaced) or 'off' (no cache directory configured).
        fallback_reason: why the requested backend is not the one running ('' when it is).
    """

    backend: str
    precision: str
    requested: str
    device: str
    compile_s: float = 0.0
    cache: str = 'off'
    fallback_reason: str = ''

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def unavailable_reason(backend: str, device: torch.device) -> str:
    """'' when ``backend`` can run on ``device``, else what is missing, in words."""
    if backend == 'torch':
        return ''
    if backend == 'openvino':
        if not _installed('openvino'):
            return 'the openvino Python package is not installed (pip install openvino)'
        if device.type not in ('cpu', 'xpu'):
            return f'OpenVINO runs on CPUs and Intel GPUs, not on torch device {device}'
        return ''
    if backend == 'tensorrt':
        missing = []
        if not _installed('tensorrt'):
            missing.append('the tensorrt Python package is not installed (pip install tensorrt)')
        if not torch.cuda.is_available():
            missing.append('no NVIDIA GPU: torch.cuda.is_available() is False')
        elif device.type != 'cuda':
            missing.append(f'TensorRT needs a CUDA device, the device is {device}')
        return '; '.join(missing)
    raise BackendError(f'backend must be one of {BACKENDS}, got {backend!r}')


def resolve_backend(requested: str, device: torch.device) -> str:
    """The concrete backend for ``requested`` on ``device``.

    ``auto``: TensorRT on CUDA when installed, else torch; OpenVINO on CPU when installed, else torch.
    A concrete name is returned as it is (availability is checked when compiling, with a fallback).

    Raises:
        BackendError: an unknown name.
    """
    if requested not in BACKENDS:
        raise BackendError(f'backend must be one of {BACKENDS}, got {requested!r}')
    if requested != 'auto':
        return requested
    if device.type == 'cuda':
        return 'tensorrt' if not unavailable_reason('tensorrt', device) else 'torch'
    if device.type == 'cpu' and not unavailable_reason('openvino', device):
        return 'openvino'
    return 'torch'


def check_precision(backend: str, precision: str) -> None:
    """Raise :class:`BackendError` when ``backend`` has no ``precision``."""
    allowed = PRECISIONS.get(backend, ())
    if precision not in allowed:
        raise BackendError(f'precision {precision!r} is not available with backend {backend!r} '
                           f'(choose one of {allowed})')
