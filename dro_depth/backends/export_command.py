"""``dro-depth export --model dro|metric --format onnx|openvino|tensorrt --size HxW [--refs N
--iterations N] --out PATH``."""
from __future__ import annotations

import argparse
import json
from typing import List, Optional

from dro_depth.errors import DroDepthError
from .export import FORMATS, export_model

__all__ = ['main']


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='dro-depth export', description='Write a DRO or metric-model '
                                     'artefact for a backend and a JSON of the exact inputs it expects')
    parser.add_argument('--model', choices=('dro', 'metric'), default='dro')
    parser.add_argument('--format', choices=FORMATS, default='onnx')
    parser.add_argument('--size', required=True, help="network input 'HxW' (DRO: x16, metric: x32)")
    parser.add_argument('--refs', type=int, default=2, help='DRO reference images')
    parser.add_argument('--iterations', type=int, default=4, help='DRO update iterations (unrolled)')
    parser.add_argument('--checkpoint', default=None, help='weights (default: the bundled model)')
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'fp16', 'bf16'), help='TensorRT only')
    parser.add_argument('--out', required=True, help='output path without suffix')
    args = parser.parse_args(argv)
    try:
        meta = export_model(args.model, args.format, args.size, args.out, refs=args.refs,
                            iterations=args.iterations, checkpoint=args.checkpoint, precision=args.precision)
    except (DroDepthError, FileNotFoundError) as exc:
        print(f'dro-depth export: {exc}')
        return 2
    print(json.dumps({k: meta[k] for k in ('files', 'inputs', 'outputs')}, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
