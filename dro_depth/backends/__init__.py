"""Compile a network once for an inference backend and run it many times.

Backends: ``torch`` (the reference, eager), ``openvino`` (CPU / Intel GPU; fp32 or bf16, from an ONNX export),
``tensorrt`` (NVIDIA; fp16 / bf16 / fp32 engines from the same ONNX export; NOT yet verified on a GPU).
``auto`` picks TensorRT on CUDA when installed, else torch CUDA; OpenVINO on CPU when installed, else torch.

    run = compile_dro(model, backend='openvino', precision='bf16', height=96, width=128,
                      num_refs=2, iterations=4)
    out = run(target, refs, K)          # out.inv_depth (B,1,H,W), out.poses (B,N,6), out.confidence
    run.info.backend, run.info.compile_s, run.info.fallback_reason

Other networks (metric models, Depth Anything, stereo) use :func:`compile_module`: any ``nn.Module`` whose
forward takes fixed-shape tensors and returns tensors (or lists / tuples / dicts of them).
A backend that is missing or fails falls back to torch with one WARN and ``info.fallback_reason``.
"""
from .compile import CompiledModule, compile_module
from .dro import CompiledDRO, DROEngineOutput, compile_dro
from .engine_pool import DROEnginePool
from .info import (BACKENDS, PRECISIONS, BackendError, BackendInfo, check_precision, resolve_backend,
                   unavailable_reason)

__all__ = ['BACKENDS', 'PRECISIONS', 'BackendError', 'BackendInfo', 'CompiledDRO', 'CompiledModule',
           'DROEngineOutput', 'DROEnginePool', 'check_precision', 'compile_dro', 'compile_module',
           'resolve_backend',
           'unavailable_reason']
