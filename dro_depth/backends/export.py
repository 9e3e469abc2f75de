"""``dro-depth export``: write a DRO or metric-model artefact (ONNX / OpenVINO IR / TensorRT engine) and a
JSON of its inputs and outputs.

    dro-depth export --model dro --format openvino --size 96x128 --refs 2 --iterations 4 --out dro_96x128
    -> dro_96x128.xml/.bin (or .onnx / .engine) and dro_96x128.json
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from dro_depth.errors import DroDepthError
from .cache import module_hash
from .dro import _DROGraph
from .info import BackendError, unavailable_reason
from .onnx_export import OPSET, export_onnx

__all__ = ['FORMATS', 'export_model']

logger = logging.getLogger(__name__)
FORMATS = ('onnx', 'openvino', 'tensorrt')


def _dro_graph(checkpoint: Optional[str], h: int, w: int, refs: int, iterations: int):
    from dro_depth.models.dro import load_dro
    from dro_depth.weights import default_dro_checkpoint

    source = checkpoint or default_dro_checkpoint()
    model = load_dro(str(source) if source else None)
    inputs = [torch.rand(1, 3, h, w), torch.rand(1, refs, 3, h, w),
              torch.tensor([[[0.9 * w, 0.0, w / 2], [0.0, 0.9 * w, h / 2], [0.0, 0.0, 1.0]]])]
    doc = [('target', 'float32 (1, 3, H, W) RGB in [0, 1]'),
           ('refs', f'float32 (1, {refs}, 3, H, W) reference images, RGB in [0, 1]'),
           ('K', 'float32 (1, 3, 3) pixel intrinsics at H x W (unused, so absent, at 0 iterations)')]
    outs = ['inv_depth float32 (1, 1, H, W)', f'poses float32 (1, {refs}, 6) [tx,ty,tz,rx,ry,rz]',
            'confidence float32 (1, 1, H, W) in [0, 1] (absent at 0 iterations)']
    return _DROGraph(model, iterations).eval(), None, inputs, doc, outs[:2 if iterations == 0 else 3], source


def _metric_graph(checkpoint: Optional[str], h: int, w: int):
    from dro_depth.models.metric.light import load_light_zoedepth
    from dro_depth.weights import default_metric_checkpoint

    source = checkpoint or default_metric_checkpoint()
    if source is None or not Path(source).is_file():
        raise DroDepthError(f'metric checkpoint not found: {source}')
    model, _ = load_light_zoedepth(source)

    def call(x):
        out = model(x, 'nyu', resize=False)
        return (out.metric_depth,) if out.route_probs is None else (out.metric_depth, out.route_probs)
    doc = [('image', 'float32 (1, 3, H, W) RGB in [0, 1], already resized to the network size (x32); '
            'normalised inside')]
    outs = ['metric_depth float32 (1, 1, H, W) metres (NYU / indoor head)',
            'route_probs float32 (1, 2) router [indoor, outdoor] (two-head models)']
    return model, call, [torch.rand(1, 3, h, w)], doc, outs, source


def parse_size(text: str) -> Tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise DroDepthError(f"--size must be 'HxW' (e.g. 96x128), got {text!r}") from None
    return h, w


def export_model(model: str, fmt: str, size: str, out: str | Path, *, refs: int = 2, iterations: int = 4,
                 checkpoint: Optional[str] = None, precision: str = 'fp32') -> Dict[str, Any]:
    """Write the artefact ``out.<ext>`` and ``out.json``; returns the JSON content.

    Raises:
        DroDepthError / BackendError: bad settings, a missing file, TensorRT without a GPU.
    """
    if fmt not in FORMATS:
        raise DroDepthError(f'--format must be one of {FORMATS}, got {fmt!r}')
    if fmt == 'tensorrt':
        reason = unavailable_reason('tensorrt', torch.device('cuda' if torch.cuda.is_available() else 'cpu'))
        if reason:
            raise BackendError(f'cannot build a TensorRT engine here: {reason}')
    h, w = parse_size(size)
    if model == 'dro':
        if h % 16 or w % 16:
            raise DroDepthError(f'DRO size {h}x{w}: height and width must be multiples of 16')
        net, call, inputs, doc, outs, source = _dro_graph(checkpoint, h, w, refs, iterations)
    elif model == 'metric':
        if h % 32 or w % 32:
            raise DroDepthError(f'metric size {h}x{w}: height and width must be multiples of 32')
        net, call, inputs, doc, outs, source = _metric_graph(checkpoint, h, w)
    else:
        raise DroDepthError(f"--model must be 'dro' or 'metric', got {model!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx_path = out.with_suffix('.onnx')
    names = [n for n, _ in doc]
    export_onnx(net, inputs, onnx_path, names, call)
    files = [onnx_path]
    if fmt == 'openvino':
        import openvino as ov
        ov.save_model(ov.Core().read_model(str(onnx_path)), str(out.with_suffix('.xml')),
                      compress_to_fp16=False)
        onnx_path.unlink()
        files = [out.with_suffix('.xml'), out.with_suffix('.bin')]
    elif fmt == 'tensorrt':
        from .tensorrt_engine import TensorRTEngine
        TensorRTEngine(onnx_path, names, out.with_suffix('.engine'), precision, torch.device('cuda'))
        files.append(out.with_suffix('.engine'))
    meta = {'model': model, 'format': fmt, 'files': [f.name for f in files], 'weights': str(source),
            'weights_sha256': module_hash(net), 'opset': OPSET, 'torch': torch.__version__,
            'height': h, 'width': w, 'inputs': [{'name': n, 'shape': list(t.shape), 'meaning': d}
                                                 for (n, d), t in zip(doc, inputs)],
            'outputs': outs}
    if model == 'dro':
        meta.update(refs=refs, iterations=iterations)
    out.with_suffix('.json').write_text(json.dumps(meta, indent=1))
    return meta
