"""The learning-curve fits recover known curves from noisy synthetic points, and extrapolate the budget right.

Points are drawn from ``0.4 (n/1000)^-0.5 + 0.1`` and ``0.5 - 0.08 log10 n`` with small seeded noise; a
fit that ignored the offset, used the wrong base of logarithm or inverted the curve wrongly fails.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from dro_depth.evaluation.learning_curve import (bootstrap_samples_needed, fit_log_linear, fit_power_law,
                                                 run_points)

N = np.geomspace(200, 20000, 9)


def _noisy(y: np.ndarray, sigma: float = 0.002) -> np.ndarray:
    return y + np.random.default_rng(3).normal(0.0, sigma, size=y.shape)


def test_power_law_recovers_parameters_and_samples_needed():
    y = _noisy(0.4 * (N / 1000) ** -0.5 + 0.1)
    fit = fit_power_law(N, y)
    assert fit.params['b'] == pytest.approx(0.5, abs=0.1)
    assert fit.params['c'] == pytest.approx(0.1, abs=0.02)
    true_needed = 1000 * ((0.15 - 0.1) / 0.4) ** -2          # 64 000 samples
    assert fit.samples_for(0.15) == pytest.approx(true_needed, rel=0.35)
    assert fit.rmse < 0.004
    assert math.isinf(fit.samples_for(0.09))                    # below the asymptote: never


def test_log_linear_recovers_slope_and_crossing():
    y = _noisy(0.5 - 0.08 * np.log10(N))
    fit = fit_log_linear(N, y)
    assert fit.params['beta'] == pytest.approx(-0.08, abs=0.005)
    assert fit.samples_for(0.15) == pytest.approx(10 ** ((0.5 - 0.15) / 0.08), rel=0.2)
    assert math.isinf(fit_log_linear(N, 0.2 + 0.01 * np.log10(N)).samples_for(0.15))   # getting worse


def test_bootstrap_brackets_the_truth_and_flags_unreachable_targets():
    y = _noisy(0.4 * (N / 1000) ** -0.5 + 0.1)
    boot = bootstrap_samples_needed(N, y, fit_power_law, 0.15, rounds=60)
    assert boot['q16'] <= boot['median'] <= boot['q84']
    assert boot['q16'] < 64000 * 1.5 and boot['q84'] > 64000 / 1.5
    flat = bootstrap_samples_needed(N, _noisy(0.2 + 0 * N), fit_log_linear, 0.15, rounds=60)
    assert flat['median'] > 1e4 * N.max()                        # a flat curve gives no usable budget


def test_run_points_count_samples_from_the_config(tmp_path):
    (tmp_path / 'config.yaml').write_text('batch_size: 4\n')
    for step in (100, 200):
        (tmp_path / f'step-{step:06d}.safetensors').write_bytes(b'')
    (tmp_path / 'last.safetensors').write_bytes(b'')
    assert [(p.name, s) for p, s in run_points(tmp_path, 1120)] == [
        ('step-000100.safetensors', 1520), ('step-000200.safetensors', 1920)]


def test_command_fits_each_series_with_enough_points_and_writes_a_small_png(tmp_path, capsys):
    import csv

    from dro_depth.evaluation.learning_curve import FIELDS, main
    path = tmp_path / 'curve.csv'
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        rows = [('scratch', n, 0.4 * (n / 1000) ** -0.5 + 0.1) for n in N] + [('old', 1000, 0.3)]
        for series, n, y in rows:
            w.writerow({'series': series, 'checkpoint': f'{series}-{int(n)}', 'samples': int(n),
                        'abs_rel_it4': y, 'a1_it4': 0.6, 'abs_rel_it12': y + 0.01, 'a1_it12': 0.6})
    assert main(['--csv', str(path), '--png', str(tmp_path / 'c.png'), '--no-eval']) == 0
    out = capsys.readouterr().out
    assert 'scratch, 4 it, power' in out and 'scratch, 12 it, loglinear' in out
    assert 'old, 4 it' not in out                                   # one point: shown, not fitted
    assert 0 < (tmp_path / 'c.png').stat().st_size < 200_000


def test_log_spaced_keeps_ends_and_thins_the_dense_end():
    from pathlib import Path

    from dro_depth.evaluation.learning_curve import log_spaced
    points = [(Path(f's{n}'), n) for n in range(100, 6001, 100)]          # 60 snapshots, 100 samples apart
    picked = [s for _, s in log_spaced(points, 8)]
    assert picked[0] == 100 and picked[-1] == 6000 and len(picked) <= 8
    ratios = np.diff(np.log(picked))
    assert ratios.max() < 2.5 * ratios.min()                              # roughly even in log(samples)
    assert [s for _, s in log_spaced(points[:5], 8)] == [100, 200, 300, 400, 500]
