"""Run an ONNX graph with OpenVINO (CPU or Intel GPU), fp32 or bf16, with its own thread budget."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from .info import BackendError

__all__ = ['OpenVINOEngine', 'openvino_device']

_HINT = {'fp32': 'f32', 'bf16': 'bf16'}


def openvino_device(device: torch.device) -> str:
    """OpenVINO device name of a torch device: cpu -> 'CPU', xpu -> 'GPU'."""
    return 'GPU' if device.type == 'xpu' else 'CPU'


class OpenVINOEngine:
    """A compiled OpenVINO model with one infer request (calls are serialised by a lock).

    Args:
        onnx_path: the exported graph.
        input_names: names of the call's inputs, in order (the exporter drops inputs a graph does not use,
            e.g. K at 0 iterations).
        precision: 'fp32' or 'bf16' (``INFERENCE_PRECISION_HINT``; bf16 is fast with AVX512-BF16 / AMX).
        device: OpenVINO device ('CPU', 'GPU').
        threads: ``INFERENCE_NUM_THREADS`` (0 = OpenVINO's default, all cores). Give the DRO and metric
            engines separate budgets: two pools that each take every core slow each other down badly.
        blob_dir: OpenVINO's own compiled-blob cache (``CACHE_DIR``), inside a configured engine cache.

    Raises:
        BackendError: OpenVINO is missing, the device is absent, or the graph does not compile.
    """

    def __init__(self, onnx_path: Path, input_names: Sequence[str], precision: str, device: str = 'CPU',
                 threads: int = 0, blob_dir: Optional[Path] = None) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendError(f'openvino is not installed ({exc}); pip install openvino') from exc
        core = ov.Core()
        if device not in core.available_devices:
            raise BackendError(f'OpenVINO device {device!r} is not present (available: '
                               f'{core.available_devices})')
        config = {'INFERENCE_PRECISION_HINT': _HINT[precision], 'PERFORMANCE_HINT': 'LATENCY',
                  'NUM_STREAMS': '1'}
        if threads > 0 and device == 'CPU':
            config['INFERENCE_NUM_THREADS'] = str(int(threads))
        if blob_dir is not None:
            core.set_property({'CACHE_DIR': str(blob_dir)})
        try:
            self._compiled = core.compile_model(core.read_model(str(onnx_path)), device, config)
        except RuntimeError as exc:
            raise BackendError(f'OpenVINO could not compile {onnx_path.name} for {device}: '
                               f'{str(exc).splitlines()[0] if str(exc) else exc}') from exc
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()
        self.device = device
        # a graph input's tensor may carry several names (the exported name and an internal one)
        self._used = []
        for port in self._compiled.inputs:
            hits = [i for i, n in enumerate(input_names) if n in port.get_names()]
            if len(hits) != 1:
                raise BackendError(f'{onnx_path.name}: graph input {sorted(port.get_names())} is none of '
                                   f'{list(input_names)}')
            self._used.append(hits[0])

    def __call__(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        arrays = [np.ascontiguousarray(inputs[i].detach().to('cpu', torch.float32).numpy())
                  for i in self._used]
        with self._lock:
            results = self._request.infer(arrays)
            return [torch.from_numpy(np.array(results[o], dtype=np.float32, copy=True))
                    for o in self._compiled.outputs]
