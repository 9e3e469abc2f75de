"""Build and run a TensorRT engine from an ONNX graph (NVIDIA only). NOT yet verified on a GPU machine.

The engine file is serialised into a configured cache folder and loaded only from there.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Sequence

import torch
from torch import Tensor

from .info import BackendError

__all__ = ['TensorRTEngine']

logger = logging.getLogger(__name__)


def _import_trt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendError(f'backend tensorrt needs the tensorrt package ({exc}); pip install tensorrt on '
                           'an NVIDIA machine') from exc
    if not torch.cuda.is_available():
        raise BackendError('backend tensorrt needs an NVIDIA GPU: torch.cuda.is_available() is False')
    return trt


class TensorRTEngine:
    """A TensorRT engine (fixed shapes) run on torch CUDA tensors.

    Args:
        onnx_path: the exported graph (used when ``engine_path`` does not exist yet).
        input_names: names of the call's inputs, in order (unused ones are absent from the graph).
        engine_path: serialised engine file (written after a build, read when present).
        precision: 'fp32', 'fp16' or 'bf16' (builder flags; layers may stay fp32 where TensorRT chooses).
        device: the CUDA device.
    """

    def __init__(self, onnx_path: Path, input_names: Sequence[str], engine_path: Path, precision: str,
                 device: torch.device) -> None:
        trt = _import_trt()
        self.input_names = list(input_names)
        self._trt = trt
        self.device = device
        self._logger = trt.Logger(trt.Logger.WARNING)
        if not engine_path.is_file():
            engine_path.write_bytes(self._build(onnx_path, precision))
        runtime = trt.Runtime(self._logger)
        self._engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise BackendError(f'TensorRT could not load the engine {engine_path}')
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == mode]
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) != mode]
        self.input_shapes = [tuple(self._engine.get_tensor_shape(n)) for n in self._inputs]

    def _build(self, onnx_path: Path, precision: str) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(onnx_path.read_bytes()):
            errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f'TensorRT could not parse {onnx_path.name}: {errors}')
        config = builder.create_builder_config()
        if precision == 'fp16':
            config.set_flag(trt.BuilderFlag.FP16)
        elif precision == 'bf16':
            config.set_flag(trt.BuilderFlag.BF16)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BackendError(f'TensorRT failed to build an engine from {onnx_path.name}')
        return bytes(serialized)

    def __call__(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        stream = torch.cuda.current_stream(self.device)
        by_name = dict(zip(self.input_names, inputs))
        keep = [by_name[n].to(self.device, torch.float32).contiguous() for n in self._inputs]
        for name, t in zip(self._inputs, keep):
            self._context.set_tensor_address(name, t.data_ptr())
        outs = []
        for name in self._outputs:
            out = torch.empty(tuple(self._context.get_tensor_shape(name)), device=self.device,
                              dtype=torch.float32)
            self._context.set_tensor_address(name, out.data_ptr())
            outs.append(out)
        if not self._context.execute_async_v3(stream.cuda_stream):
            raise BackendError('TensorRT execution failed')
        return outs
