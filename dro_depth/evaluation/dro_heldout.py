"""Accuracy of a DRO model on held-out synthetic sequences, per iteration count, against baselines.

    python -m dro_depth.evaluation.dro_heldout [--checkpoint PATH] [--seeds 1000 1001 ...] [--iterations 0 2 4 8 12]

Samples are (target, references) triples from synthetic indoor and outdoor sequences whose scene seeds
were never used in training (training uses seeds < 1000). For each iteration count it prints depth
AbsRel / RMSE / delta<1.25 (metric, and median-scaled), the relative-pose error of the estimated
target->reference motion, and the network latency on this machine. Baselines:

* constant depth: one depth value for every pixel of every frame (the median ground-truth depth of the
  training sequences), with the identity as relative pose;
* median-scaled constant: a constant map scaled per frame by the ground-truth median (an oracle for scale,
  no structure).

``--middlebury`` adds the two-view metric depth error on the Middlebury 2014 Motorcycle pair.
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

from dro_depth.data.dataset import SequenceDataset
from dro_depth.data.synthetic import generate_sequence
from dro_depth.geometry import pose_vec_to_matrix, rotation_angle
from .scores import depth_errors

__all__ = ['evaluate_model', 'heldout_dataset', 'middlebury_two_view', 'main']


def _pose_errors(T_pred: np.ndarray, T_gt: np.ndarray) -> tuple[float, float]:
    """Translation error (m) and rotation error (deg) of one relative pose."""
    E = np.linalg.solve(T_gt, T_pred)
    return float(np.linalg.norm(T_pred[:3, 3] - T_gt[:3, 3])), float(np.degrees(rotation_angle(E)))


def _summarise(rows: List[Dict[str, float]]) -> Dict[str, float]:
    keys = rows[0].keys()
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def heldout_dataset(seeds: Sequence[int], kinds: Sequence[str] = ('indoor', 'outdoor'), frames: int = 40,
                    stride: int = 4, height: int = 96, width: int = 128,
                    offsets: Sequence[int] = (-1, -3)) -> SequenceDataset:
    """Every ``stride``-th tracked (non-static) target of the held-out sequences ``seeds`` x ``kinds``,
    rendered at 240x320 and resized to the network's ``height`` x ``width``."""
    seqs = [generate_sequence(k, seed=s, n_frames=frames, height=240, width=320) for s in seeds for k in kinds]
    ds = SequenceDataset(seqs, offsets=offsets, height=height, width=width, skip_static=True)
    ds.index = ds.index[::stride]
    return ds


def evaluate_model(model: torch.nn.Module, dataset: SequenceDataset, iterations: Sequence[int],
                   constant_depth: float, max_depth: float = 80.0) -> Dict[str, Dict[str, float]]:
    """Mean metrics per method ('constant', 'median_scaled_constant', 'it0', 'it2', ...)."""
    results: Dict[str, List[Dict[str, float]]] = {}
    model.eval()
    for i in range(len(dataset)):
        s = dataset[i]
        gt = s['depth'][0].numpy()
        T_gt = s['T_ref_tgt'].double().numpy()
        const = np.full_like(gt, constant_depth)
        ident = [_pose_errors(np.eye(4), T) for T in T_gt]
        em = depth_errors(const, gt, max_depth=max_depth, median_scaling=True)
        for name, scaled in (('constant', False), ('median_scaled_constant', True)):
            e = em if scaled else depth_errors(const, gt, max_depth=max_depth)
            results.setdefault(name, []).append({
                'abs_rel': e['abs_rel'], 'rmse': e['rmse'], 'a1': e['a1'],
                'abs_rel_ms': em['abs_rel'], 'rmse_ms': em['rmse'], 'a1_ms': em['a1'],
                'rpe_t': float(np.mean([t for t, _ in ident])), 'rpe_r': float(np.mean([r for _, r in ident])),
                'ms': 0.0})
        for it in iterations:
            with torch.inference_mode():
                t0 = time.perf_counter()
                out = model(s['image'][None], s['refs'][None], s['K'][None], iterations=it)
                ms = (time.perf_counter() - t0) * 1e3
            inv = out.inv_depth[0, 0].double().numpy()
            pred = np.where(inv > 0, 1.0 / np.maximum(inv, 1e-9), np.nan)
            e = depth_errors(pred, gt, max_depth=max_depth)
            em = depth_errors(pred, gt, max_depth=max_depth, median_scaling=True)
            T_pred = pose_vec_to_matrix(out.poses[0].double().numpy())
            pe = [_pose_errors(Tp, Tg) for Tp, Tg in zip(T_pred, T_gt)]
            results.setdefault(f'it{it}', []).append({
                'abs_rel': e['abs_rel'], 'rmse': e['rmse'], 'a1': e['a1'],
                'abs_rel_ms': em['abs_rel'], 'rmse_ms': em['rmse'], 'a1_ms': em['a1'],
                'rpe_t': float(np.mean([t for t, _ in pe])), 'rpe_r': float(np.mean([r for _, r in pe])),
                'ms': ms})
    return {k: _summarise(v) for k, v in results.items()}


def middlebury_two_view(model: torch.nn.Module, height: int, iterations: int) -> Dict[str, float]:
    """Two-view depth error on Middlebury 2014 Motorcycle (left = target, right = reference).

    The right image is shifted by the principal-point offset (doffs) so that both views share one K, as
    DRO expects; the known baseline is not given to the network.
    """
    from dro_depth.data.middlebury import DOFFS, load_motorcycle
    from dro_depth.geometry import PinholeCamera

    pair = load_motorcycle()
    h0, w0 = pair.left.shape[:2]
    width = max(32, int(round(height * w0 / h0 / 16.0)) * 16)   # keep the aspect ratio, multiple of 16
    shift = np.float32([[1, 0, -DOFFS], [0, 1, 0]])
    right = cv2.warpAffine(pair.right, shift, (w0, h0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    cam = PinholeCamera(pair.K_left, w0, h0).resized(width, height)

    def tensor(img: np.ndarray) -> torch.Tensor:
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255.0

    with torch.inference_mode():
        out = model(tensor(pair.left), tensor(right)[:, None], torch.from_numpy(cam.K).float()[None],
                    iterations=iterations)
    inv = out.inv_depth[0, 0].numpy()
    pred = cv2.resize(np.where(inv > 0, 1.0 / np.maximum(inv, 1e-9), np.nan).astype(np.float32), (w0, h0),
                      interpolation=cv2.INTER_LINEAR)
    metric = depth_errors(pred, pair.depth_left, max_depth=80.0)
    scaled = depth_errors(pred, pair.depth_left, max_depth=80.0, median_scaling=True)
    t_est = float(np.linalg.norm(out.poses[0, 0, :3].numpy()))
    return {'abs_rel': metric['abs_rel'], 'rmse': metric['rmse'], 'a1': metric['a1'],
            'abs_rel_ms': scaled['abs_rel'], 'a1_ms': scaled['a1'], 'scale': scaled['scale'],
            'baseline_est_m': t_est, 'baseline_true_m': pair.baseline}


def _table(res: Dict[str, Dict[str, float]]) -> str:
    head = ('| method | AbsRel | RMSE m | d<1.25 | AbsRel (med-scaled) | d<1.25 (med-scaled) | RPE trans m '
            '| RPE rot deg | latency ms |')
    lines = [head, '|' + '---|' * 9]
    for name, m in res.items():
        lines.append(f"| {name} | {m['abs_rel']:.3f} | {m['rmse']:.3f} | {m['a1']:.3f} | {m['abs_rel_ms']:.3f} | "
                     f"{m['a1_ms']:.3f} | {m['rpe_t']:.4f} | {m['rpe_r']:.3f} | {m['ms']:.0f} |")
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    from dro_depth.models.dro import build_dro, load_dro
    from dro_depth.weights import default_dro_checkpoint

    p = argparse.ArgumentParser(prog='python -m dro_depth.evaluation.dro_heldout', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', default=None, help='default: the bundled model')
    p.add_argument('--seeds', nargs='+', type=int, default=[1000, 1001, 1002])
    p.add_argument('--kinds', nargs='+', default=['indoor', 'outdoor'])
    p.add_argument('--frames', type=int, default=40)
    p.add_argument('--stride', type=int, default=4, help='use every stride-th target frame')
    p.add_argument('--iterations', nargs='+', type=int, default=[0, 2, 4, 8, 12])
    p.add_argument('--height', type=int, default=96)
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--offsets', nargs='+', type=int, default=[-1, -3])
    p.add_argument('--constant-depth', type=float, default=0.0,
                   help='constant baseline depth (default: median GT depth of training seeds 100-103)')
    p.add_argument('--threads', type=int, default=0)
    p.add_argument('--middlebury', action='store_true')
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    ckpt = a.checkpoint or default_dro_checkpoint()
    model = load_dro(str(ckpt), dtype=torch.float32) if ckpt else build_dro()
    const = a.constant_depth
    if const <= 0:
        train_depths = [generate_sequence(k, seed=s, n_frames=10, height=60, width=80).depths
                        for s in (100, 101) for k in a.kinds]
        const = float(np.nanmedian(np.concatenate([d.ravel() for d in train_depths])))
    ds = heldout_dataset(a.seeds, a.kinds, a.frames, a.stride, a.height, a.width, a.offsets)
    print(f'# checkpoint {ckpt}; {len(ds)} held-out samples (seeds {a.seeds}, {a.kinds}) at {a.height}x{a.width}, '
          f'refs {a.offsets}; constant baseline {const:.2f} m; torch threads {torch.get_num_threads()}')
    res = evaluate_model(model, ds, a.iterations, const)
    print(_table(res))
    if a.middlebury:
        for it in a.iterations:
            m = middlebury_two_view(model, a.height, it)
            print(f"middlebury it{it}: AbsRel {m['abs_rel']:.3f} RMSE {m['rmse']:.3f} m d1 {m['a1']:.3f} | "
                  f"median-scaled AbsRel {m['abs_rel_ms']:.3f} d1 {m['a1_ms']:.3f} (scale {m['scale']:.2f}); "
                  f"estimated baseline {m['baseline_est_m']:.3f} m (true {m['baseline_true_m']:.3f})")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
