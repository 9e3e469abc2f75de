"""ONNX export of a fixed-shape network, with its outputs flattened to a list of tensors.

Uses the TorchScript exporter (``dynamo=False``, opset 17): loops over a fixed iteration count are
unrolled, which is what OpenVINO and TensorRT run unchanged.
"""
from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, List, Sequence, Tuple

import torch
from torch import Tensor, nn

__all__ = ['OPSET', 'export_onnx', 'flatten_outputs', 'unflatten_outputs']

logger = logging.getLogger(__name__)
OPSET = 17
#: torch.onnx.export keeps global state: two exports at once (DRO and metric threads) break each other
_EXPORT_LOCK = threading.Lock()


def flatten_outputs(value: Any) -> Tuple[List[Tensor], Any]:
    """Tensors of a nest of tuples / lists / dicts / None, and a spec for :func:`unflatten_outputs`."""
    if value is None:
        return [], None
    if torch.is_tensor(value):
        return [value], 'T'
    if isinstance(value, (list, tuple)):
        flat: List[Tensor] = []
        specs = []
        for v in value:
            f, s = flatten_outputs(v)
            flat += f
            specs.append((len(f), s))
        return flat, (type(value).__name__, specs)
    if isinstance(value, dict):
        flat, specs = [], []
        for k, v in value.items():
            f, s = flatten_outputs(v)
            flat += f
            specs.append((k, len(f), s))
        return flat, ('dict', specs)
    raise TypeError(f'cannot compile a network returning {type(value).__name__}: return tensors, or '
                    'tuples / lists / dicts of tensors')


def unflatten_outputs(flat: Sequence[Tensor], spec: Any) -> Any:
    """Inverse of :func:`flatten_outputs`."""
    if spec is None:
        return None
    if spec == 'T':
        return flat[0]
    kind, parts = spec
    if kind == 'dict':
        out, i = {}, 0
        for k, n, s in parts:
            out[k] = unflatten_outputs(flat[i:i + n], s)
            i += n
        return out
    items, i = [], 0
    for n, s in parts:
        items.append(unflatten_outputs(flat[i:i + n], s))
        i += n
    return tuple(items) if kind == 'tuple' else items


class _Flat(nn.Module):
    """``fn``'s outputs as a flat tuple (what the ONNX exporter wants)."""

    def __init__(self, module: nn.Module, call: Callable[..., Any]) -> None:
        super().__init__()
        self.module = module
        self._call = call

    def forward(self, *inputs: Tensor) -> Tuple[Tensor, ...]:
        return tuple(flatten_outputs(self._call(*inputs))[0])


def export_onnx(module: nn.Module, inputs: Sequence[Tensor], path: str | Path,
                input_names: Sequence[str], call: Callable[..., Any] | None = None) -> Tuple[List[str], Any]:
    """Write ``module`` (fixed shapes of ``inputs``) to ``path`` as ONNX.

    Args:
        module: the network, in eval mode, on CPU float32 (exported as traced).
        inputs: example inputs; the graph accepts exactly these shapes and dtypes.
        path: output ``.onnx`` file.
        input_names: one name per input.
        call: ``call(*inputs)`` producing the outputs (default ``module(*inputs)``).

    Returns:
        ``(output_names, output_spec)``: names ``out0``.. and the nesting for :func:`unflatten_outputs`.
    """
    call = call or module
    with torch.inference_mode():
        _, spec = flatten_outputs(call(*inputs))
    flat = _Flat(module, call).eval()
    with torch.no_grad():
        n_out = len(flat(*inputs))
    names = [f'out{i}' for i in range(n_out)]
    with _EXPORT_LOCK, warnings.catch_warnings():
        warnings.simplefilter('ignore')           # tracer warnings about Python bools in input checks
        torch.onnx.export(flat, tuple(inputs), str(path), opset_version=OPSET, dynamo=False,
                          input_names=list(input_names), output_names=names, do_constant_folding=True)
    return names, spec
