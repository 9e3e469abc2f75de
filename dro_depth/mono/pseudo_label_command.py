"""`dro-depth pseudo-label`: run a teacher over unlabeled images (bags, folders) and write its labels.

    dro-depth pseudo-label --teacher dro_depth/weights/metric_default.safetensors --bag logs/run1 --out pl/run1
    dro-depth pseudo-label --teacher depth_anything_v2_vits.pth --encoder vits --folder images/ --out pl/imgs

The output folder (:mod:`dro_depth.data.pseudo_labels`) holds each image, its float32 inverse-depth label, a
preview PNG and ``index.json`` mapping source and stamp to label; ``model: mono`` training reads it
(``pseudo_labels: [folder]``). Teachers: see :mod:`dro_depth.mono.teacher`.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

from dro_depth.errors import DroDepthError

__all__ = ['main']

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='dro-depth pseudo-label', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--teacher', required=True, help='light metric / light relative model, or a Depth Anything '
                                                    'V2 checkpoint')
    p.add_argument('--bag', action='append', default=[], help='ROS 2 bag (repeatable)')
    p.add_argument('--folder', action='append', default=[], help='image folder (repeatable)')
    p.add_argument('--out', required=True, help='output folder (must be new or empty unless --overwrite)')
    p.add_argument('--image-topic', default='/image', help='image topic of the bags')
    p.add_argument('--every', type=int, default=1, help='label every N-th image of each source')
    p.add_argument('--max-images', type=int, default=0, help='stop after this many images (0: all)')
    p.add_argument('--encoder', default='vits', help='Depth Anything encoder (vits, vitb, vitl)')
    p.add_argument('--metric', action='store_true', help='the Depth Anything checkpoint is a metric one')
    p.add_argument('--max-depth', type=float, default=20.0, help='metric Depth Anything range (m)')
    p.add_argument('--input-size', type=int, default=518, help='Depth Anything input size')
    p.add_argument('--device', default='auto')
    p.add_argument('--overwrite', action='store_true')
    return p


def _open_sources(bags: List[str], folders: List[str], image_topic: str) -> list:
    """``[(source, frame iterator)]``; each source is opened and checked now, its frames read lazily."""
    from dro_depth.data.bags import read_bag
    from dro_depth.data.folders import read_folder

    eye = np.eye(3)
    iters = [(b, read_bag(b, image_topic=image_topic, camera_info_topic=None, K=eye)) for b in bags]
    return iters + [(f, read_folder(f, K=eye, load_depth=False)) for f in folders]


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.bag and not args.folder:
        raise DroDepthError('give at least one --bag or --folder of unlabeled images')
    if args.every < 1 or args.max_images < 0:
        raise DroDepthError(f'--every must be >= 1 and --max-images >= 0, got {args.every}, {args.max_images}')
    for path in args.bag + args.folder:
        if not Path(path).exists():
            raise FileNotFoundError(f'no such bag or folder: {path}')
    from dro_depth.data.pseudo_labels import PseudoLabelWriter
    from .teacher import load_teacher

    teacher = load_teacher(args.teacher, encoder=args.encoder, metric=args.metric, max_depth=args.max_depth,
                           input_size=args.input_size, device=args.device)
    sources = _open_sources(args.bag, args.folder, args.image_topic)
    written = 0
    with PseudoLabelWriter(args.out, teacher.describe(), overwrite=args.overwrite) as writer:
        for source, frames in sources:
            for frame in frames:
                if args.max_images and written >= args.max_images:
                    break
                if frame.index % args.every:
                    continue
                writer.add(frame.image, teacher(frame.image), source, frame.index, frame.stamp_ns)
                written += 1
    print(f'wrote {written} pseudo-labels ({teacher.kind} teacher) to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
