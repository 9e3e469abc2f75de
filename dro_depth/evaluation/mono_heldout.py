"""Held-out accuracy of relative (affine-invariant inverse) depth on synthetic scenes of a chosen look.

    python -m dro_depth.evaluation.mono_heldout --checkpoint runs/mono/final.safetensors \
        --seeds 1000-1029 --style heldout [--frames 4] [--out report.json]

Any teacher file works (:func:`dro_depth.mono.teacher.load_teacher`: light metric, light relative, Depth
Anything V2). The prediction ``p`` (inverse depth) is aligned to the ground-truth inverse depth ``g`` per
image over the valid pixels (finite depth in (0, max] m: 10 indoors, 80 outdoors) in three ways, converted to
depth (aligned inverse depth clamped to ``>= 1 / max``) and scored with AbsRel and delta < 1.25 (mean over
images):

* ``median``: scale only, ``p * median(g) / median(p)`` (the per-image median scaling of depth ``1 / p``;
  meaningful only if the prediction has no shift);
* ``median_mad``: scale and shift by median and mean absolute deviation (the normalisation of the training
  loss);
* ``lsq``: least-squares scale and shift on inverse depth (the usual relative-depth protocol).

Seeds >= 1000 are never trained on.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

__all__ = ['ALIGNMENTS', 'align_inverse_depth', 'relative_errors', 'heldout_sequences', 'evaluate_relative',
           'main']

ALIGNMENTS = ('median', 'median_mad', 'lsq')
MAX_DEPTH = {'indoor': 10.0, 'outdoor': 80.0}


def align_inverse_depth(p: np.ndarray, g: np.ndarray, how: str) -> np.ndarray:
    """``p`` aligned to ``g`` (1-D arrays of the valid pixels) by ``how`` (one of :data:`ALIGNMENTS`)."""
    if how == 'median':
        return p * (np.median(g) / max(float(np.median(p)), 1e-12))
    if how == 'median_mad':
        mp, mg = np.median(p), np.median(g)
        return (p - mp) / max(float(np.mean(np.abs(p - mp))), 1e-12) * np.mean(np.abs(g - mg)) + mg
    if how == 'lsq':
        a = np.stack([p, np.ones_like(p)], 1).astype(np.float64)
        (s, t), *_ = np.linalg.lstsq(a, g.astype(np.float64), rcond=None)
        return s * p + t
    raise ValueError(f'unknown alignment {how!r}; expected one of {ALIGNMENTS}')


def relative_errors(pred: np.ndarray, depth: np.ndarray, max_depth: float) -> Optional[Dict[str, dict]]:
    """``{alignment: {'abs_rel', 'a1'}}`` of one image (``pred`` inverse depth, ``depth`` metres, same
    shape); None when fewer than 10 pixels are valid."""
    valid = np.isfinite(depth) & (depth > 1e-3) & (depth <= max_depth) & np.isfinite(pred)
    if valid.sum() < 10:
        return None
    p, d = pred[valid].astype(np.float64), depth[valid].astype(np.float64)
    g = 1.0 / d
    out = {}
    for how in ALIGNMENTS:
        est = 1.0 / np.maximum(align_inverse_depth(p, g, how), 1.0 / max_depth)
        ratio = np.maximum(est / d, d / est)
        out[how] = {'abs_rel': float(np.mean(np.abs(est - d) / d)), 'a1': float(np.mean(ratio < 1.25))}
    return out


def heldout_sequences(seeds: Sequence[int], style: str = 'heldout', frames: int = 4, height: int = 240,
                      width: int = 320, kinds: Sequence[str] = ('indoor', 'outdoor')) -> list:
    """Synthetic sequences of ``seeds`` x ``kinds`` in appearance ``style`` (:mod:`dro_depth.data.domains`)."""
    from dro_depth.data.domains import styled_scene
    from dro_depth.data.synthetic import generate_sequence

    seqs = []
    for seed in seeds:
        for kind in kinds:
            scene = styled_scene(kind, seed, style, n_frames=frames)
            seq = generate_sequence(kind, seed=seed, n_frames=frames, height=height, width=width, scene=scene)
            seq.metadata['style'] = style
            seqs.append(seq)
    return seqs


def evaluate_relative(predict: Callable, sequences: Sequence, device=None, every: int = 1) -> Dict[str, dict]:
    """Scores (see the module docstring) per kind and over all images.

    Args:
        predict: ``uint8 (H, W, 3)`` RGB -> inverse depth ``(H, W)`` (numpy); or, when ``device`` is given, a
            torch function ``(1, 3, H, W)`` in [0, 1] -> ``(1, H, W)``.
    """
    import torch

    per: Dict[str, List[dict]] = {}
    for seq in sequences:
        kind = seq.metadata.get('kind', 'indoor')
        for t in range(0, len(seq), every):
            img = seq.images[t]
            if device is not None:
                with torch.no_grad():
                    x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(device)
                    pred = predict(x)[0].float().cpu().numpy()
            else:
                pred = np.asarray(predict(img), np.float32)
            scores = relative_errors(pred, seq.depths[t], MAX_DEPTH.get(kind, 80.0))
            if scores is not None:
                per.setdefault(kind, []).append(scores)
    if not per:
        raise ValueError('no image with valid ground truth to evaluate')
    report: Dict[str, dict] = {}
    everything = [s for rows in per.values() for s in rows]
    for name, rows in list(per.items()) + [('all', everything)]:
        report[name] = {how: {m: float(np.mean([r[how][m] for r in rows])) for m in ('abs_rel', 'a1')}
                        for how in ALIGNMENTS}
        report[name]['n_images'] = len(rows)
    return report


def _seeds(text: str) -> List[int]:
    out: List[int] = []
    for part in text.split(','):
        m = re.fullmatch(r'\s*(\d+)\s*(?:-\s*(\d+))?\s*', part)
        if not m:
            raise ValueError(f'bad seed list {text!r} (e.g. 1000-1029 or 1000,1001)')
        out += list(range(int(m[1]), int(m[2] or m[1]) + 1))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='python -m dro_depth.evaluation.mono_heldout', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--seeds', default='1000-1029')
    p.add_argument('--style', default='heldout', choices=('standard', 'heldout'))
    p.add_argument('--frames', type=int, default=4)
    p.add_argument('--height', type=int, default=192)
    p.add_argument('--width', type=int, default=256)
    p.add_argument('--device', default='cpu')
    p.add_argument('--out', default='')
    args = p.parse_args(argv)
    from dro_depth.mono.teacher import load_teacher

    teacher = load_teacher(args.checkpoint, device=args.device)
    seqs = heldout_sequences(_seeds(args.seeds), args.style, args.frames, args.height, args.width)
    report = {'checkpoint': args.checkpoint, 'teacher_kind': teacher.kind, 'style': args.style,
              'seeds': args.seeds, **evaluate_relative(teacher, seqs)}
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
