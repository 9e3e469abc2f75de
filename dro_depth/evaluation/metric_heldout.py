"""Held-out accuracy of a metric-depth model on synthetic scenes, against constant baselines.

    python -m dro_depth.evaluation.metric_heldout [--checkpoint PATH] [--seeds 1000 1001 1002] [--frames 20]

For each domain (indoor, outdoor): metric AbsRel / RMSE / delta<1.25 of the model with its router's own
choice of head, of the model with the correct head forced, and of a constant predictor equal to the
held-out ground truth's median (an optimistic baseline: it knows the scene's typical depth). Plus the
router's accuracy. Seeds >= 1000 are never used for training.
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from dro_depth.data.mono_dataset import DOMAIN_LABELS, HEAD_MAX_DEPTH, domain_of
from .scores import DepthMetricAccumulator
from dro_depth.models.metric.light import LightCore

__all__ = ['evaluate_metric_model', 'heldout_sequences', 'main']


def heldout_sequences(seeds: Sequence[int], data=None, frames: int = 20) -> list:
    """Synthetic indoor and outdoor sequences of ``seeds`` (render size from ``data`` if given)."""
    from dro_depth.data.synthetic import generate_sequence

    h = getattr(data, 'render_height', 240)
    w = getattr(data, 'render_width', 320)
    kinds = getattr(data, 'kinds', ['indoor', 'outdoor'])
    return [generate_sequence(kind, seed=s, n_frames=frames, height=h, width=w)
            for s in seeds for kind in kinds]


@torch.no_grad()
def evaluate_metric_model(model: torch.nn.Module, sequences: Sequence, every: int = 2) -> Dict[str, dict]:
    """Metrics per domain and overall (see the module docstring); every ``every``-th frame is used."""
    device = next(model.parameters()).device
    pad = not isinstance(getattr(model, 'core', None), LightCore)    # light models are trained unpadded
    accs: Dict[str, Dict[str, DepthMetricAccumulator]] = {}
    route_hits: Dict[str, List[bool]] = {}
    for seq in sequences:
        dom = domain_of(seq)
        max_d = HEAD_MAX_DEPTH[dom]
        acc = accs.setdefault(dom, {k: DepthMetricAccumulator(max_depth=max_d)
                                    for k in ('routed', 'forced', 'constant')})
        for t in range(0, len(seq), every):
            img = torch.from_numpy(seq.images[t]).permute(2, 0, 1)[None].float().div(255).to(device)
            gt = seq.depths[t]
            out = model.infer(img, pad_input=pad)
            routed = out.metric_depth[0, 0].float().cpu().numpy()
            if out.route_probs is not None:
                route_hits.setdefault(dom, []).append(int(out.route_index[0]) == DOMAIN_LABELS[dom])
                forced = model.infer(img, dom, pad_input=pad).metric_depth[0, 0].float().cpu().numpy()
            else:
                forced = routed
            acc['routed'].add(routed, gt)
            acc['forced'].add(forced, gt)
            valid = np.isfinite(gt) & (gt > 0) & (gt < max_d)
            acc['constant'].add(np.full_like(gt, np.median(gt[valid]) if valid.any() else 1.0), gt)
    report: Dict[str, dict] = {}
    for dom, acc in accs.items():
        report[dom] = {k: {m: a.summary()['metric'][m] for m in ('abs_rel', 'rmse', 'a1')}
                       for k, a in acc.items()}
        report[dom]['n_frames'] = acc['routed'].summary()['n_frames']
        if dom in route_hits:
            report[dom]['route_accuracy'] = float(np.mean(route_hits[dom]))
    doms = list(accs)
    report['all'] = {k: {m: float(np.mean([report[d][k][m] for d in doms]))
                         for m in ('abs_rel', 'rmse', 'a1')}
                     for k in ('routed', 'forced', 'constant')}
    if route_hits:
        report['all']['route_accuracy'] = float(np.mean([h for d in route_hits for h in route_hits[d]]))
    return report


def format_table(report: Dict[str, dict]) -> str:
    rows = ['| domain | predictor | AbsRel | RMSE (m) | δ<1.25 |', '|---|---|---:|---:|---:|']
    for dom, r in report.items():
        for k in ('routed', 'forced', 'constant'):
            m = r[k]
            name = {'routed': 'model (router picks head)', 'forced': 'model (correct head)',
                    'constant': 'constant = GT median'}[k]
            rows.append(f'| {dom} | {name} | {m["abs_rel"]:.3f} | {m["rmse"]:.2f} | {m["a1"]:.3f} |')
        if 'route_accuracy' in r:
            rows.append(f'| {dom} | router accuracy | {r["route_accuracy"]:.3f} | | |')
    return '\n'.join(rows)


def main(argv: Optional[List[str]] = None) -> int:
    from dro_depth.models.metric.light import load_light_zoedepth
    from dro_depth.weights import default_metric_checkpoint

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', default=None, help='light metric model (default: the bundled one)')
    parser.add_argument('--seeds', nargs='+', type=int, default=[1000, 1001, 1002, 1003])
    parser.add_argument('--frames', type=int, default=20)
    parser.add_argument('--json', default=None, help='also write the report here')
    args = parser.parse_args(argv)
    path = args.checkpoint or default_metric_checkpoint()
    if path is None:
        parser.error('no --checkpoint and no bundled metric model')
    model, _ = load_light_zoedepth(path)
    report = evaluate_metric_model(model, heldout_sequences(args.seeds, frames=args.frames))
    print(format_table(report))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
