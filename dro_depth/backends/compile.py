"""Generic compile-once, run-many for fixed-shape networks: :func:`compile_module`.

This is the API for every network of the package (DRO through :func:`~dro_depth.backends.dro.compile_dro`,
the metric cores, Depth Anything, stereo)::

    run = compile_module(net, (example_image,), backend='openvino', precision='bf16', threads=1,
                         name='depth_anything')
    out = run(image)            # same nesting as net(image): tensors / tuples / lists / dicts
    run.info                    # BackendInfo: what runs, compile time, cache state, fallback reason

The graph has the shapes of the example inputs; other shapes raise :class:`BackendError` (compile one
per size, or use :class:`~dro_depth.backends.lazy.ShapeCompiledModule`).
"""
from __future__ import annotations

import ast
import logging
import shutil
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

import torch
from torch import Tensor, nn

from .cache import EngineCache, cache_key, module_hash
from .info import BackendError, BackendInfo, check_precision, resolve_backend, unavailable_reason
from .onnx_export import OPSET, export_onnx, unflatten_outputs

__all__ = ['CompiledModule', 'compile_module']

logger = logging.getLogger(__name__)
_AUTOCAST = {'fp16': torch.float16, 'bf16': torch.bfloat16}
#: bumped when the exported graph of the same weights changes (part of every cache key)
EXPORT_VERSION = 1


class CompiledModule:
    """A network compiled for one backend at fixed input shapes. Call it like the network."""

    def __init__(self, runner: Callable[[Sequence[Tensor]], Any], info: BackendInfo,
                 input_shapes: Sequence[tuple], unflatten: Optional[Any] = None) -> None:
        self._runner = runner
        self._spec = unflatten
        self.info = info
        self.input_shapes = [tuple(s) for s in input_shapes]

    def __call__(self, *inputs: Tensor) -> Any:
        shapes = [tuple(t.shape) for t in inputs]
        if shapes != self.input_shapes:
            raise BackendError(f'{self.info.backend} graph was compiled for input shapes '
                               f'{self.input_shapes}, got {shapes}; compile one for this size')
        out = self._runner(inputs)
        return out if self._spec is None else unflatten_outputs(out, self._spec)


def _torch_runner(call: Callable[..., Any], device: torch.device, precision: str) -> Callable:
    autocast = _AUTOCAST.get(precision) if device.type == 'cuda' else None

    def run(inputs: Sequence[Tensor]) -> Any:
        ctx = torch.autocast('cuda', dtype=autocast) if autocast else nullcontext()
        with torch.inference_mode(), ctx:
            return call(*[t.to(device) for t in inputs])
    return run


def _torch_compiled(call, inputs, device, precision, requested, reason='') -> CompiledModule:
    if precision != 'fp32' and device.type != 'cuda':
        reason = (reason + '; ' if reason else '') + f'torch {precision} needs CUDA: running fp32 on {device}'
        precision = 'fp32'
    info = BackendInfo('torch', precision, requested, str(device), fallback_reason=reason)
    return CompiledModule(_torch_runner(call, device, precision), info, [t.shape for t in inputs])


def _param_device(module: nn.Module) -> torch.device:
    p = next(iter(module.parameters()), None)
    return p.device if p is not None else torch.device('cpu')


def _build_engine(backend: str, folder: Path, onnx_path: Path, names: Sequence[str], precision: str,
                  device: torch.device, threads: int,
                  use_blob_cache: bool) -> Callable[[Sequence[Tensor]], List[Tensor]]:
    if backend == 'openvino':
        from .openvino_engine import OpenVINOEngine, openvino_device
        return OpenVINOEngine(onnx_path, names, precision, openvino_device(device), threads,
                              blob_dir=folder / 'ov_blobs' if use_blob_cache else None)
    from .tensorrt_engine import TensorRTEngine
    return TensorRTEngine(onnx_path, names, folder / 'model.engine', precision, device)


def _export_cached(module, call, inputs, names, cache: EngineCache, name: str, tmp: Path):
    """(folder holding model.onnx + outputs.txt, output spec); from the cache when it has a valid entry."""
    fields = {'kind': 'onnx', 'name': name, 'weights': module_hash(module),
              'inputs': [list(t.shape) for t in inputs], 'opset': OPSET, 'export_version': EXPORT_VERSION,
              'torch': torch.__version__}
    key = cache_key(fields)
    folder, state = cache.lookup(key, fields)
    if folder is not None:
        return folder, ast.literal_eval((folder / 'outputs.txt').read_text()), state
    folder = cache.entry(key) or tmp
    folder.mkdir(parents=True, exist_ok=True)
    _, spec = export_onnx(module, [t.to(_param_device(module)) for t in inputs], folder / 'model.onnx', names,
                          call)
    (folder / 'outputs.txt').write_text(repr(spec))
    if cache.enabled:
        cache.store(key, fields, folder)
    return folder, spec, state


def _compile_graph(module, call, inputs, names, backend, precision, device, threads, cache, name):
    """(runner, spec, compile seconds, cache state) for ``backend``; raises on any failure."""
    t0 = time.perf_counter()
    fields = {'kind': 'engine', 'name': name, 'weights': module_hash(module), 'backend': backend,
              'precision': precision, 'device': str(device), 'inputs': [list(t.shape) for t in inputs],
              'opset': OPSET, 'export_version': EXPORT_VERSION, 'versions': cache.versions()}
    key = cache_key(fields)
    folder, state = cache.lookup(key, fields)
    tmp = Path(tempfile.mkdtemp(prefix=f'dro_depth_{name}_'))
    try:
        onnx_dir, spec, onnx_state = _export_cached(module, call, inputs, names, cache, name, tmp / 'onnx')
        engine_dir = folder or cache.entry(key) or tmp / 'engine'
        engine_dir.mkdir(parents=True, exist_ok=True)
        (engine_dir / 'onnx.txt').write_text(onnx_dir.name)
        runner = _build_engine(backend, engine_dir, onnx_dir / 'model.onnx', names, precision, device,
                               threads, use_blob_cache=cache.enabled)
        if cache.enabled and state != 'hit':
            cache.store(key, fields, engine_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if onnx_state == 'rebuilt':
        state = 'rebuilt'
    return runner, spec, time.perf_counter() - t0, state


def compile_module(module: nn.Module, example_inputs: Sequence[Tensor], *, backend: str = 'auto',
                   precision: str = 'fp32', device: str | torch.device = 'cpu', threads: int = 0,
                   cache_dir: str | Path | None = None, input_names: Sequence[str] | None = None,
                   call: Callable[..., Any] | None = None, name: str = 'module',
                   strict: bool = False) -> CompiledModule:
    """Compile ``module`` for ``backend`` at the shapes of ``example_inputs``.

    Args:
        module: the network (eval mode; CPU float32 weights for export).
        example_inputs: float32 tensors with the shapes the graph will accept.
        backend: 'auto' | 'torch' | 'openvino' | 'tensorrt' (see
            :func:`~dro_depth.backends.info.resolve_backend`).
        precision: 'fp32' | 'bf16' | 'fp16' (what the backend supports; see ``PRECISIONS``).
        device: torch device the outputs are for ('cpu'; 'xpu' = Intel GPU for OpenVINO; 'cuda').
        threads: CPU threads of this engine (OpenVINO; 0 = all cores).
        cache_dir: engine cache folder; None = no disk cache (nothing is ever loaded from elsewhere).
        input_names: graph input names (default ``in0``..).
        call: ``call(*inputs)`` giving the outputs (default ``module(*inputs)``), e.g. to fix keywords.
        name: label of the network in logs and cache keys.
        strict: raise instead of falling back to torch.

    Returns:
        :class:`CompiledModule`. On a missing or failing backend (and ``strict`` False): the torch module,
        with one WARN line and ``info.fallback_reason``.

    Raises:
        BackendError: unknown backend / unsupported precision; with ``strict``, any backend failure.
    """
    device = torch.device(device)
    call = call or module
    inputs = [t.detach() for t in example_inputs]
    concrete = resolve_backend(backend, device)
    if backend != 'auto':
        check_precision(concrete, precision)
    if concrete == 'openvino' and precision not in ('fp32', 'bf16'):
        concrete = 'torch'                         # auto with fp16: only torch CUDA / TensorRT have it
    if concrete == 'torch':
        return _torch_compiled(call, inputs, device, precision, backend)
    reason = unavailable_reason(concrete, device)
    if not reason:
        try:
            runner, spec, seconds, state = _compile_graph(
                module, call, inputs, list(input_names or [f'in{i}' for i in range(len(inputs))]),
                concrete, precision, device, threads, EngineCache(cache_dir), name)
            info = BackendInfo(concrete, precision, backend, getattr(runner, 'device', str(device)),
                               compile_s=seconds, cache=state)
            logger.info('%s compiled for %s %s in %.1f s (cache %s)', name, concrete, precision, seconds,
                        state)
            return CompiledModule(runner, info, [t.shape for t in inputs], spec)
        except Exception as exc:  # noqa: BLE001 - any export/compile failure falls back (reason kept)
            if strict:
                raise BackendError(f'backend {concrete!r} failed to compile {name}: {exc}') from exc
            reason = f'{concrete} failed to compile {name}: {type(exc).__name__}: {exc}'
    if strict:
        raise BackendError(f'backend {concrete!r} cannot run {name}: {reason}')
    logger.warning('backend %s is not used for %s, falling back to torch: %s', concrete, name, reason)
    return _torch_compiled(call, inputs, device, precision if device.type == 'cuda' else 'fp32', backend,
                           reason)
