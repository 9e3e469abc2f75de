"""Convex (learned) upsampling of a low-resolution map, RAFT style."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['convex_upsample']


def convex_upsample(x: torch.Tensor, mask: torch.Tensor, ratio: int = 8) -> torch.Tensor:
    """Upsample ``x`` by ``ratio`` with a per-pixel convex combination of its 3x3 neighbourhood.

    Args:
        x: low-resolution map [B,1,h,w].
        mask: logits [B, 9*ratio*ratio, h, w], viewed as [B,1,9,ratio,ratio,h,w]; softmax over the 9
            neighbours (k = 3*dy + dx, zero padding outside the map).

    Returns:
        [B,1,ratio*h,ratio*w]; output pixel (ratio*i+a, ratio*j+b) =
        sum_k softmax_k[a,b,i,j] * x[i+dy-1, j+dx-1].
    """
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f'convex_upsample expects x of shape [B,1,h,w], got {tuple(x.shape)}')
    b, _, h, w = x.shape
    if mask.shape != (b, 9 * ratio * ratio, h, w):
        raise ValueError(f'convex_upsample: mask shape {tuple(mask.shape)} does not match '
                         f'[{b},{9 * ratio * ratio},{h},{w}]')
    weights = torch.softmax(mask.view(b, 1, 9, ratio, ratio, h, w), dim=2)
    patches = F.unfold(x, [3, 3], padding=1).view(b, 1, 9, 1, 1, h, w)
    up = torch.sum(weights * patches, dim=2)  # [B,1,r,r,h,w]
    return up.permute(0, 1, 4, 2, 5, 3).reshape(b, 1, ratio * h, ratio * w)
