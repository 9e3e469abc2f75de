"""Disparity error metrics: EPE, bad-k (Middlebury), D1 (KITTI 2015), pooled over frames; KITTI hole filling.

One rule for every metric: pixels are scored where the ground-truth disparity is finite (NaN/inf = unknown);
a missing prediction (NaN/inf) is scored as disparity 0, so its error is the full ground-truth disparity
(holes count against a method in EPE, bad-k and, where the GT disparity is above 3 px, D1).

* EPE: mean absolute disparity error (px). bad-k: % of pixels with error > k px.
* D1 (KITTI 2015): % of outliers, a pixel being an outlier when its error is > 3 px **and** > 5 % of the
  ground-truth disparity.

:class:`DisparityAccumulator` pools pixels over frames (sum of errors / number of pixels, as the KITTI
devkit sums outliers over images), so a frame with more ground truth weighs more.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

__all__ = ['D1_ABS_PX', 'D1_REL', 'disparity_errors', 'd1_outliers', 'frame_scores', 'DisparityAccumulator',
           'interpolate_background']

D1_ABS_PX = 3.0
D1_REL = 0.05


def disparity_errors(pred: np.ndarray, gt: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Absolute errors over the pixels with finite ground truth.

    Args:
        pred, gt: float (H, W) disparity in pixels; NaN/inf in ``gt`` marks unknown, in ``pred`` missing.

    Returns:
        ``(err, g, finite)``: 1-D arrays over the known pixels: error (px; ``|g|`` where the prediction is
        missing), ground-truth disparity, and whether the prediction was finite.

    Raises:
        ValueError: shapes differ, or the ground truth has no finite pixel.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'prediction {pred.shape} and ground truth {gt.shape} differ in shape')
    known = np.isfinite(gt)
    if not known.any():
        raise ValueError('ground truth has no finite disparity')
    p, g = pred[known].astype(np.float64), gt[known].astype(np.float64)
    finite = np.isfinite(p)
    err = np.where(finite, np.abs(np.where(finite, p, 0.0) - g), np.abs(g))
    return err, g, finite


def d1_outliers(err: np.ndarray, g: np.ndarray) -> np.ndarray:
    """KITTI 2015 outliers: ``err > 3 px`` and ``err > 5 %`` of the ground-truth disparity (bool)."""
    return (err > D1_ABS_PX) & (err > D1_REL * np.abs(g))


def _counts(err: np.ndarray, g: np.ndarray, finite: np.ndarray) -> Dict[str, float]:
    return {'n': float(err.size), 'err': float(err.sum()), 'bad1': float((err > 1).sum()),
            'bad2': float((err > 2).sum()), 'bad3': float((err > 3).sum()),
            'd1': float(d1_outliers(err, g).sum()), 'finite': float(finite.sum())}


def _scores(c: Dict[str, float]) -> Dict[str, float]:
    n = c['n']
    return {'epe': c['err'] / n, 'bad1': 100 * c['bad1'] / n, 'bad2': 100 * c['bad2'] / n,
            'bad3': 100 * c['bad3'] / n, 'd1': 100 * c['d1'] / n, 'valid_pct': 100 * c['finite'] / n,
            'pixels': int(n)}


def frame_scores(pred: np.ndarray, gt: np.ndarray) -> Dict[str, float]:
    """EPE (px), bad-1/2/3, D1 and valid (% of GT pixels with a finite prediction), and the pixel count.

    Example:
        >>> gt = np.array([[100.0, 10.0]]); frame_scores(np.array([[104.0, 14.0]]), gt)['d1']
        50.0
    """
    return _scores(_counts(*disparity_errors(pred, gt)))


class DisparityAccumulator:
    """Pools :func:`frame_scores` over frames (pixel-weighted)."""

    def __init__(self) -> None:
        self._sum: Dict[str, float] = {}
        self.frames = 0

    def add(self, pred: np.ndarray, gt: np.ndarray, predicted: Optional[np.ndarray] = None) -> Dict[str, float]:
        """Add one frame; returns its own scores.

        Args:
            pred, gt: float (H, W) disparity (see :func:`disparity_errors`).
            predicted: optional bool (H, W): the pixels the method itself predicted, for ``valid_pct`` when
                ``pred`` has been hole-filled (default: where ``pred`` is finite).
        """
        err, g, finite = disparity_errors(pred, gt)
        if predicted is not None:
            finite = np.asarray(predicted, bool)[np.isfinite(gt)]
        c = _counts(err, g, finite)
        for k, v in c.items():
            self._sum[k] = self._sum.get(k, 0.0) + v
        self.frames += 1
        return _scores(c)

    def summary(self) -> Dict[str, float]:
        """Pooled scores over every added pixel (raises ValueError when nothing was added)."""
        if not self.frames:
            raise ValueError('no frame was scored')
        return _scores(self._sum)


def interpolate_background(disparity: np.ndarray) -> np.ndarray:
    """Fill missing disparities as the KITTI devkit does before scoring (``interpolateBackground``).

    Along each row, a gap between two valid pixels takes the smaller (background) of the two; the row's
    ends take the nearest valid value; rows with no valid pixel above the first (below the last) valid row
    copy that row. Rows without a valid pixel between valid rows stay missing. Valid = finite and >= 0.

    Args:
        disparity: float (H, W), NaN/inf/negative = missing.

    Returns:
        float32 (H, W).
    """
    d = np.asarray(disparity, np.float32)
    valid = np.isfinite(d) & (d >= 0)
    h, w = d.shape
    cols = np.broadcast_to(np.arange(w), (h, w))
    left = np.maximum.accumulate(np.where(valid, cols, -1), axis=1)               # last valid at or before u
    right = np.minimum.accumulate(np.where(valid, cols, w)[:, ::-1], axis=1)[:, ::-1]  # first at or after u
    rows = np.arange(h)[:, None]
    dl = np.where(left >= 0, d[rows, np.clip(left, 0, w - 1)], np.nan)
    dr = np.where(right < w, d[rows, np.clip(right, 0, w - 1)], np.nan)
    filled = np.where((left >= 0) & (right < w), np.minimum(dl, dr), np.where(left >= 0, dl, dr))
    out = np.where(valid, d, filled).astype(np.float32)
    has = valid.any(axis=1)
    if has.any():
        first, last = int(np.argmax(has)), h - 1 - int(np.argmax(has[::-1]))
        out[:first] = out[first]
        out[last + 1:] = out[last]
    return out
