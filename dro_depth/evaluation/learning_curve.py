"""Learning curve of DRO training: held-out accuracy of kept checkpoints against samples seen, a fit, and the
extrapolated budget for a target AbsRel.

    python -m dro_depth.evaluation.learning_curve --series gru128_finetune --run runs/curve \\
        --base-samples 1120 [--checkpoint PATH:SAMPLES ...] --csv docs/training/dro_learning_curve.csv \\
        --png docs/training/dro_learning_curve.png [--no-eval] [--target 0.15]

1. every kept snapshot ``RUN/step-NNNNNN.safetensors`` (``keep_every`` of the DRO recipe) is a point at
   ``base_samples + step x batch_size`` samples (batch size from ``RUN/config.yaml``); ``--checkpoint
   PATH:SAMPLES`` adds models trained elsewhere (e.g. an older bundled model);
2. each point not yet in the CSV is evaluated on the held-out scenes like
   ``python -m dro_depth.evaluation.dro_heldout`` (seeds 1000-1001, 24 frames, every 4th tracked target:
   21 samples, 96x128, median-scaled per frame) at 4 and 12 iterations and appended to the CSV, so the
   command can be rerun while training goes on; ``--series`` names the curve the new points belong to;
3. ``AbsRel(n) = a (n / n0)^-b + c`` (``n0`` the geometric mean of the sample counts, for conditioning) and
   ``AbsRel = alpha + beta log10(n)`` are fitted per series (with >= 3 points) and iteration count; a residual bootstrap gives the spread
   of the samples needed for ``--target``; the PNG shows points, fits and target.
"""
from __future__ import annotations

import argparse
import csv
import logging
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ['Fit', 'bootstrap_samples_needed', 'evaluate_points', 'fit_log_linear', 'fit_power_law',
           'log_spaced', 'run_points', 'main']

logger = logging.getLogger(__name__)

FIELDS = ['series', 'checkpoint', 'samples', 'abs_rel_it4', 'a1_it4', 'abs_rel_it12', 'a1_it12', 'rpe_t_it4',
          'rpe_r_it4', 'abs_rel_const', 'a1_const']


@dataclass
class Fit:
    """One fitted curve: ``kind`` 'power' (``a (n/n0)^-b + c``) or 'loglinear' (``alpha + beta log10 n``)."""

    kind: str
    params: Dict[str, float]
    rmse: float

    def __call__(self, n: np.ndarray) -> np.ndarray:
        n = np.asarray(n, dtype=float)
        p = self.params
        if self.kind == 'power':
            return p['a'] * (n / p['n0']) ** -p['b'] + p['c']
        return p['alpha'] + p['beta'] * np.log10(n)

    def samples_for(self, target: float) -> float:
        """Samples at which the curve reaches ``target`` (inf when it never does)."""
        p = self.params
        if self.kind == 'power':
            if target <= p['c'] or p['a'] <= 0 or p['b'] <= 0:
                return math.inf
            exponent = -math.log((target - p['c']) / p['a']) / p['b']        # log of n / n0
            return p['n0'] * math.exp(exponent) if exponent < 690 else math.inf
        exponent = (target - p['alpha']) / p['beta'] if p['beta'] < 0 else math.inf
        return 10.0 ** exponent if exponent < 300 else math.inf


def fit_power_law(n: Sequence[float], y: Sequence[float]) -> Fit:
    """Least-squares ``y = a (n/n0)^-b + c`` with ``a >= 0``, ``0 < b <= 3``, ``0 <= c <= min(y)``."""
    from scipy.optimize import OptimizeWarning, curve_fit

    n, y = np.asarray(n, float), np.asarray(y, float)
    if len(n) < 3:
        raise ValueError(f'a power law with offset needs >= 3 points, got {len(n)}')
    n0 = float(np.exp(np.mean(np.log(n))))
    c_max = float(y.min())

    def f(x, a, b, c):
        return a * (x / n0) ** -b + c

    best = None
    for b0 in (0.1, 0.5, 1.0, 2.0):            # a few starts: the offset and exponent trade off
        c0 = 0.5 * c_max
        p0 = (max(float(np.mean(y)) - c0, 1e-3), b0, c0)
        try:
            with warnings.catch_warnings():          # 3 points: no covariance, which is not used
                warnings.simplefilter('ignore', OptimizeWarning)
                p, _ = curve_fit(f, n, y, p0=p0, bounds=([0.0, 1e-3, 0.0], [10.0, 3.0, c_max]), maxfev=20000)
        except RuntimeError:
            continue
        err = float(np.sqrt(np.mean((f(n, *p) - y) ** 2)))
        if best is None or err < best[1]:
            best = (p, err)
    if best is None:
        raise ValueError('power-law fit did not converge')
    (a, b, c), err = best
    return Fit('power', {'a': float(a), 'b': float(b), 'c': float(c), 'n0': n0}, err)


def fit_log_linear(n: Sequence[float], y: Sequence[float]) -> Fit:
    """Least-squares ``y = alpha + beta log10(n)``."""
    n, y = np.asarray(n, float), np.asarray(y, float)
    if len(n) < 2:
        raise ValueError(f'a log-linear fit needs >= 2 points, got {len(n)}')
    beta, alpha = np.polyfit(np.log10(n), y, 1)
    fit = Fit('loglinear', {'alpha': float(alpha), 'beta': float(beta)}, 0.0)
    fit.rmse = float(np.sqrt(np.mean((fit(n) - y) ** 2)))
    return fit


def bootstrap_samples_needed(n: Sequence[float], y: Sequence[float], fitter: Callable[..., Fit], target: float,
                             rounds: int = 300, seed: int = 0) -> Dict[str, float]:
    """Residual bootstrap of ``fitter``: median and 16/84 % quantiles of the samples needed for ``target``
    (inf where a resampled curve never reaches it) and the fraction of resamples that never do."""
    n, y = np.asarray(n, float), np.asarray(y, float)
    base = fitter(n, y)
    resid = y - base(n)
    rng = np.random.default_rng(seed)
    needed = []
    for _ in range(rounds):
        y_b = base(n) + rng.choice(resid, size=len(resid), replace=True)
        try:
            needed.append(fitter(n, y_b).samples_for(target))
        except ValueError:
            needed.append(math.inf)
    needed = np.asarray(needed)
    q16, q50, q84 = np.quantile(needed, [0.16, 0.5, 0.84], method='inverted_cdf')    # no inf - inf: stays defined
    return {'best': base.samples_for(target), 'median': float(q50), 'q16': float(q16), 'q84': float(q84),
            'unreachable': float(np.mean(~np.isfinite(needed)))}


def run_points(run: Path, base_samples: int) -> List[Tuple[Path, int]]:
    """``(snapshot, samples seen)`` for every ``step-NNNNNN.safetensors`` kept in the training folder ``run``."""
    import yaml

    cfg = yaml.safe_load((run / 'config.yaml').read_text())
    batch = int(cfg['batch_size'])
    points = []
    for path in sorted(run.glob('step-*.safetensors')):
        m = re.fullmatch(r'step-(\d+)\.safetensors', path.name)
        if m:
            points.append((path, base_samples + int(m.group(1)) * batch))
    return points


def log_spaced(points: Sequence[Tuple[Path, int]], k: int) -> List[Tuple[Path, int]]:
    """At most ``k`` of ``points`` (sorted by samples), the nearest to ``k`` log-spaced sample counts
    between the first and the last (both kept)."""
    points = sorted(points, key=lambda p: p[1])
    if k <= 0 or len(points) <= k:
        return points
    logs = np.log([max(s, 1) for _, s in points])
    picks = {int(np.argmin(np.abs(logs - t))) for t in np.linspace(logs[0], logs[-1], k)}
    return [points[i] for i in sorted(picks)]


def _read_rows(csv_path: Path) -> List[Dict[str, str]]:
    if not csv_path.is_file():
        return []
    with open(csv_path) as f:
        return list(csv.DictReader(f))


def evaluate_points(points: Sequence[Tuple[Path, int]], csv_path: Path, series: str,
                    threads: int = 1) -> List[Dict[str, str]]:
    """Evaluate each ``(checkpoint, samples)`` of ``series`` not yet in ``csv_path`` on the held-out set,
    append its row; returns all rows."""
    import torch

    from dro_depth.models.dro import load_dro
    from .dro_heldout import evaluate_model, heldout_dataset

    rows = _read_rows(csv_path)
    done = {(r['series'], r['checkpoint'], int(r['samples'])) for r in rows}
    todo = [(p, s) for p, s in points if (series, p.name, s) not in done]
    if todo:
        torch.set_num_threads(threads)
        ds = heldout_dataset([1000, 1001], frames=24, stride=4)
        new_file = not csv_path.is_file()
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(csv_path, 'a', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            if new_file:
                writer.writeheader()
            for path, samples in todo:
                res = evaluate_model(load_dro(str(path), dtype=torch.float32), ds, [4, 12], constant_depth=4.0)
                row = {'series': series, 'checkpoint': path.name, 'samples': samples,
                       'abs_rel_const': f"{res['median_scaled_constant']['abs_rel_ms']:.4f}",
                       'a1_const': f"{res['median_scaled_constant']['a1_ms']:.4f}",
                       'rpe_t_it4': f"{res['it4']['rpe_t']:.4f}", 'rpe_r_it4': f"{res['it4']['rpe_r']:.3f}"}
                for it in (4, 12):
                    row[f'abs_rel_it{it}'] = f"{res[f'it{it}']['abs_rel_ms']:.4f}"
                    row[f'a1_it{it}'] = f"{res[f'it{it}']['a1_ms']:.4f}"
                writer.writerow(row)
                f.flush()
                logger.info('%s (%d samples): AbsRel %s / %s at 4 / 12 iterations', path.name, samples,
                            row['abs_rel_it4'], row['abs_rel_it12'])
                rows.append({k: str(v) for k, v in row.items()})
    return rows


def _series(rows: List[Dict[str, str]]) -> Dict[str, List[Dict[str, str]]]:
    out: Dict[str, List[Dict[str, str]]] = {}
    for r in sorted(rows, key=lambda r: int(r['samples'])):
        out.setdefault(r['series'], []).append(r)
    return out


def _plot(rows: List[Dict[str, str]], fits: Dict[Tuple[str, str], Dict[str, Fit]], target: float,
          png: Path, fit_from: int = 0) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    n_all = np.array([int(r['samples']) for r in rows], float)
    reach = [f.samples_for(target) for per in fits.values() for f in per.values()]
    hi = max([n_all.max() * 3] + [x * 1.3 for x in reach if math.isfinite(x) and x < n_all.max() * 30])
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    for (name, group), marker in zip(_series(rows).items(), 'osD^v'):
        n = np.array([int(r['samples']) for r in group], float)
        grid = np.geomspace(max(n.min(), fit_from), hi, 200)
        for it, color in (('4', 'tab:blue'), ('12', 'tab:orange')):
            y = np.array([float(r[f'abs_rel_it{it}']) for r in group])
            used = (n >= fit_from) & ((name, it) in fits)
            ax.plot(n[used], y[used], marker, color=color, ms=4, label=f'{name}, {it} it' if used.any() else None)
            ax.plot(n[~used], y[~used], marker, color=color, ms=4, mfc='none',
                    label=None if used.any() else f'{name}, {it} it')
            for kind, style in (('power', '-'), ('loglinear', ':')):
                if kind in fits.get((name, it), {}):
                    ax.plot(grid, fits[(name, it)][kind](grid), style, color=color, lw=0.8)
    ax.axhline(target, color='k', lw=0.8, ls='--', label=f'target {target}')
    ax.set_xscale('log')
    top = max(float(r[f'abs_rel_it{it}']) for r in rows for it in ('4', '12')) + 0.03
    ax.set_ylim(max(0.0, target - 0.05), min(top, 0.6))           # early from-scratch spikes run off the top
    ax.set_xlabel('training samples seen')
    ax.set_ylabel('held-out AbsRel (median-scaled)')
    ax.set_title('DRO on held-out synthetic scenes (21 samples); lines: power law (solid), log-linear (dotted); '
                 'hollow: not fitted', fontsize=7)
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3, which='both')
    fig.tight_layout()
    fig.savefig(png, dpi=72)
    plt.close(fig)


def _report(rows: List[Dict[str, str]], target: float,
            fit_from: int = 0) -> Dict[Tuple[str, str], Dict[str, Fit]]:
    """Fit every series with >= 3 points of at least ``fit_from`` samples, per iteration count; print
    parameters and the budget."""
    fits: Dict[Tuple[str, str], Dict[str, Fit]] = {}
    for name, group in _series([r for r in rows if int(r['samples']) >= fit_from]).items():
        if len(group) < 3:                     # two points fit any curve exactly: no residual, no spread
            continue
        n = np.array([int(r['samples']) for r in group], float)
        for it in ('4', '12'):
            y = np.array([float(r[f'abs_rel_it{it}']) for r in group])
            fits[(name, it)] = {}
            for kind, fitter in (('power', fit_power_law), ('loglinear', fit_log_linear)):
                fit = fitter(n, y)
                fits[(name, it)][kind] = fit
                boot = bootstrap_samples_needed(n, y, fitter, target)
                params = ' '.join(f'{k}={v:.4g}' for k, v in fit.params.items())
                print(f'{name}, {it} it, {kind}: {params}; rmse {fit.rmse:.4f}; samples for AbsRel {target}: '
                      f"{boot['best']:.3g} (bootstrap median {boot['median']:.3g}, 16-84 % "
                      f"{boot['q16']:.3g}-{boot['q84']:.3g}, never reached in {100 * boot['unreachable']:.0f} %)")
    return fits


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    p = argparse.ArgumentParser(prog='python -m dro_depth.evaluation.learning_curve', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--run', help='training folder with kept step-NNNNNN.safetensors snapshots')
    p.add_argument('--base-samples', type=int, default=0, help='samples the run\'s initial weights had seen')
    p.add_argument('--checkpoint', action='append', default=[], help='PATH:SAMPLES, another point')
    p.add_argument('--csv', required=True)
    p.add_argument('--png', default='')
    p.add_argument('--target', type=float, default=0.15)
    p.add_argument('--max-points', type=int, default=0,
                   help="evaluate at most this many of the run's snapshots, log-spaced (0: all)")
    p.add_argument('--fit-from', type=int, default=0,
                   help='fit only points with at least this many samples (past warm-up and early transients)')
    p.add_argument('--series', default='run', help='name of the curve the new points belong to')
    p.add_argument('--no-eval', action='store_true', help='only fit and plot the CSV')
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args(argv)
    points = [(Path(c.rsplit(':', 1)[0]), int(c.rsplit(':', 1)[1])) for c in a.checkpoint]
    if a.run:
        points += log_spaced(run_points(Path(a.run), a.base_samples), a.max_points)
    rows = _read_rows(Path(a.csv)) if a.no_eval else evaluate_points(points, Path(a.csv), a.series, a.threads)
    print('| series | samples | AbsRel 4 it | d<1.25 4 it | AbsRel 12 it | d<1.25 12 it |\n|---|---|---|---|---|---|')
    for name, group in _series(rows).items():
        for r in group:
            print(f"| {name} | {r['samples']} | {float(r['abs_rel_it4']):.3f} | {float(r['a1_it4']):.3f} | "
                  f"{float(r['abs_rel_it12']):.3f} | {float(r['a1_it12']):.3f} |")
    fits = _report(rows, a.target, a.fit_from)
    if a.png and rows:
        _plot(rows, fits, a.target, Path(a.png), a.fit_from)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
