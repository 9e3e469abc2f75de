"""eval-stereo metrics, the SGBM baseline and resolution handling."""
import numpy as np
import pytest

from dro_depth.evaluation.stereo_eval import disparity_scores, evaluate_method, format_table, sgbm_disparity


def test_scores_exclude_unknown_gt_and_penalise_missing_predictions():
    gt = np.array([[10.0, 10.0, np.nan, np.inf, 10.0]], np.float32)
    pred = np.array([[10.5, 12.5, 99.0, 99.0, np.nan]], np.float32)
    s = disparity_scores(pred, gt)
    assert s['epe'] == pytest.approx((0.5 + 2.5 + 10.0) / 3)
    assert s['bad1'] == pytest.approx(200 / 3) and s['bad3'] == pytest.approx(100 / 3)
    assert s['valid_pct'] == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match='no finite'):
        disparity_scores(pred, np.full_like(gt, np.nan))


def _textured_pair(d=8, h=96, w=160):
    rng = np.random.default_rng(0)
    left = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    right = np.roll(left, -d, axis=1)            # right(x) = left(x + d): disparity d
    return left, right


def test_sgbm_recovers_a_known_shift():
    left, right = _textured_pair(8)
    d = sgbm_disparity(left, right, max_disparity=32)
    core = d[10:-10, 40:-10]
    assert np.nanmedian(core) == pytest.approx(8, abs=0.25)


def test_half_resolution_halves_the_ground_truth():
    left, right = _textured_pair(8)
    gt = np.full(left.shape[:2], 8.0, np.float32)
    seen = {}

    def run(lft, rgt):
        seen['shape'] = lft.shape
        return np.full(lft.shape[:2], 4.0, np.float32)
    s = evaluate_method('const', run, left, right, gt, 0.5)
    assert seen['shape'] == (48, 80, 3) and s.epe == pytest.approx(0.0) and s.size == '80x48'
    assert '| const | 80x48 | 0.00 |' in format_table([s])
