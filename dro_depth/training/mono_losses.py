"""Losses of the Depth Anything recipe (relative inverse depth, i.e. disparity up to scale and shift).

* :func:`ssi_normalise`: per image, ``d_hat = (d - median(d)) / mean(|d - median(d)|)`` over the valid pixels.
* :func:`ssi_loss_map` / :func:`ssi_loss`: ``|d_hat_pred - d_hat_gt|`` (affine-invariant, MiDaS / Depth
  Anything).
* :func:`gradient_matching_loss`: MiDaS gradient matching of the normalised residual over 4 scales.
* :func:`trimmed_mean`: per sample, the largest ``trim`` fraction of the per-pixel losses ignored (Depth
  Anything ignores the top 10 % of each pseudo-labeled sample).
* :func:`cutmix_loss`: the two regions of a CutMix input, each against its own label, weighted by area.
* :func:`feature_alignment_loss`: ``1 - cos`` between student and frozen-encoder features, pixels already
  more similar than ``1 - alpha`` excluded.

Shapes: predictions and targets ``(B, H, W)`` (or ``(B, 1, H, W)``), masks boolean of the same shape.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['ssi_normalise', 'ssi_loss_map', 'ssi_loss', 'gradient_matching_loss', 'trimmed_mean',
           'cutmix_loss', 'feature_alignment_loss', 'masked_median']


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


def masked_median(x: Tensor, mask: Tensor) -> Tensor:
    """``(B,)`` lower median of each sample's masked values (0 where a sample has none)."""
    xf, mf = _flat(x), _flat(mask)
    n = mf.sum(1)
    big = torch.finfo(x.dtype).max
    srt = torch.sort(torch.where(mf, xf, torch.full_like(xf, big)), dim=1).values
    idx = ((n - 1).clamp(min=0) // 2).unsqueeze(1)
    return torch.where(n > 0, srt.gather(1, idx).squeeze(1), torch.zeros_like(n, dtype=x.dtype))


def ssi_normalise(d: Tensor, mask: Tensor, eps: float = 1e-6) -> Tensor:
    """``(d - t) / s`` per sample, ``t`` the median and ``s`` the mean absolute deviation from it over
    ``mask`` (same shape as ``d``; values outside the mask are meaningless)."""
    t = masked_median(d, mask).view(-1, *([1] * (d.ndim - 1)))
    dev = (d - t).abs()
    n = _flat(mask).sum(1).clamp(min=1)
    s = (_flat(torch.where(mask, dev, torch.zeros_like(dev))).sum(1) / n).view_as(t)
    return (d - t) / s.clamp(min=eps)


def ssi_loss_map(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Per-pixel ``|d_hat_pred - d_hat_target|`` (0 outside ``mask``)."""
    err = (ssi_normalise(pred, mask) - ssi_normalise(target, mask)).abs()
    return torch.where(mask, err, torch.zeros_like(err))


def trimmed_mean(loss_map: Tensor, mask: Tensor, trim: float = 0.0) -> Tensor:
    """Mean over the batch of each sample's masked mean, after dropping its ``floor(trim * n_valid)``
    largest values. Samples with no valid pixel count as 0."""
    if not 0.0 <= trim < 1.0:
        raise ValueError(f'trim must be in [0, 1), got {trim}')
    lf, mf = _flat(loss_map), _flat(mask)
    n = mf.sum(1)
    keep = mf
    if trim > 0:
        n_drop = torch.floor(trim * n.to(loss_map.dtype)).long()
        order = torch.argsort(torch.where(mf, lf, torch.full_like(lf, -1.0)), dim=1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(lf.shape[1], device=lf.device).expand_as(order))
        keep = mf & (rank >= n_drop.unsqueeze(1))
    kept = keep.sum(1)
    per = torch.where(keep, lf, torch.zeros_like(lf)).sum(1) / kept.clamp(min=1)
    return torch.where(kept > 0, per, torch.zeros_like(per)).mean()


def ssi_loss(pred: Tensor, target: Tensor, mask: Tensor, trim: float = 0.0) -> Tensor:
    """The affine-invariant loss (mean over samples), optionally trimmed (see :func:`trimmed_mean`)."""
    return trimmed_mean(ssi_loss_map(pred, target, mask), mask, trim)


def gradient_matching_loss(pred: Tensor, target: Tensor, mask: Tensor, scales: int = 4) -> Tensor:
    """MiDaS gradient matching: ``sum_k mean |grad R_k|``, ``R = d_hat_pred - d_hat_target`` subsampled by
    ``2^k`` (x and y differences between valid neighbours, normalised by the valid pixel count)."""
    if pred.ndim == 4:
        pred, target, mask = pred[:, 0], target[:, 0], mask[:, 0]
    res = ssi_normalise(pred, mask) - ssi_normalise(target, mask)
    res = torch.where(mask, res, torch.zeros_like(res))
    total = pred.new_zeros(())
    for k in range(scales):
        step = 2 ** k
        r, m = res[:, ::step, ::step], mask[:, ::step, ::step]
        mx = m[:, :, 1:] & m[:, :, :-1]
        my = m[:, 1:, :] & m[:, :-1, :]
        gx = (r[:, :, 1:] - r[:, :, :-1]).abs() * mx
        gy = (r[:, 1:, :] - r[:, :-1, :]).abs() * my
        n = m.sum()
        if n > 0:
            total = total + (gx.sum() + gy.sum()) / n
    return total


def cutmix_loss(loss_fn: Callable[[Tensor, Tensor, Tensor], Tensor], pred: Tensor, label_a: Tensor,
                label_b: Tensor, valid_a: Tensor, valid_b: Tensor, box: Tensor) -> Tensor:
    """Loss of a CutMix input (``box`` True where the pixels come from image B): the region outside the box
    against label A and the box against label B, each normalised within its own region, combined as
    ``(area(~box) * L_A + area(box) * L_B) / area`` per sample (``box`` ``(B, H, W)`` boolean)."""
    total = box[0].numel()
    w_b = _flat(box).sum(1).to(pred.dtype) / total                     # (B,)
    loss = pred.new_zeros(())
    for b in range(pred.shape[0]):
        sl = slice(b, b + 1)
        la = loss_fn(pred[sl], label_a[sl], valid_a[sl] & ~box[sl]) if w_b[b] < 1 else pred.new_zeros(())
        lb = loss_fn(pred[sl], label_b[sl], valid_b[sl] & box[sl]) if w_b[b] > 0 else pred.new_zeros(())
        loss = loss + (1 - w_b[b]) * la + w_b[b] * lb
    return loss / pred.shape[0]


def feature_alignment_loss(student: Tensor, frozen: Tensor, alpha: float = 0.15) -> Tensor:
    """``mean(1 - cos)`` over the pixels whose cosine similarity is below ``1 - alpha`` (features
    ``(B, C, h, w)``; the frozen ones are resized to the student's grid if needed). 0 when every pixel is
    already within the margin."""
    if frozen.shape[-2:] != student.shape[-2:]:
        frozen = F.interpolate(frozen, size=student.shape[-2:], mode='bilinear', align_corners=False)
    cos = F.cosine_similarity(student, frozen.detach(), dim=1)
    keep = cos < 1.0 - alpha
    if not bool(keep.any()):
        return student.sum() * 0.0
    return (1.0 - cos[keep]).mean()
