"""1-D (horizontal) all-pairs correlation pyramid of RAFT-Stereo ('reg' implementation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['CorrPyramid1D', 'correlation_1d', 'linear_lookup']


def correlation_1d(fmap1: torch.Tensor, fmap2: torch.Tensor) -> torch.Tensor:
    """Scaled dot products along rows.

    Args:
        fmap1: float (B, D, H, W1) left features. fmap2: float (B, D, H, W2) right features.

    Returns:
        float (B*H*W1, 1, 1, W2): ``<f1[:, :, y, x1], f2[:, :, y, x2]> / sqrt(D)``.
    """
    b, d, h, w1 = fmap1.shape
    w2 = fmap2.shape[-1]
    corr = torch.einsum('bdhx,bdhy->bhxy', fmap1, fmap2)  # (B, H, W1, W2)
    return corr.reshape(b * h * w1, 1, 1, w2) / float(d) ** 0.5


def linear_lookup(corr: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of each row of ``corr`` at positions ``x``; zero outside ``[0, W-1]``.

    Equals ``grid_sample(align_corners=True, padding_mode='zeros')`` with the official ``2x/(W-1)-1``
    normalisation, and stays defined for ``W == 1``.

    Args:
        corr: float (N, W). x: float (N, S) sample positions in pixels.

    Returns:
        float (N, S).
    """
    w = corr.shape[-1]
    x0 = torch.floor(x)
    frac = x - x0
    i0 = x0.long()
    i1 = i0 + 1
    v0 = torch.gather(corr, 1, i0.clamp(0, w - 1)) * ((i0 >= 0) & (i0 <= w - 1)).to(corr.dtype)
    v1 = torch.gather(corr, 1, i1.clamp(0, w - 1)) * ((i1 >= 0) & (i1 <= w - 1)).to(corr.dtype)
    return v0 * (1 - frac) + v1 * frac


class CorrPyramid1D:
    """Correlation volume plus ``levels`` 1x2-average-pooled copies (``levels + 1`` built, as the official
    code does; only the first ``levels`` are looked up).

    Args:
        fmap1, fmap2: float (B, D, H, W) features of the left and right image.
        levels: looked-up levels. radius: samples x-r .. x+r at each level.
    """

    def __init__(self, fmap1: torch.Tensor, fmap2: torch.Tensor, levels: int = 4, radius: int = 4) -> None:
        self.levels = levels
        self.radius = radius
        self.batch, _, self.height, self.width = fmap1.shape
        corr = correlation_1d(fmap1, fmap2)
        self.pyramid = [corr]
        for _ in range(levels):
            # a 1-pixel-wide level is kept as is (the official code fails there: tiny inputs only)
            corr = F.avg_pool2d(corr, [1, 2], stride=[1, 2], ceil_mode=corr.shape[-1] < 2)
            self.pyramid.append(corr)

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        """Sample around the matched x positions.

        Args:
            coords: float (B, 2, H, W) absolute match coordinates (x first) at feature resolution.

        Returns:
            float (B, levels*(2r+1), H, W), level-major.
        """
        r = self.radius
        b, _, h, w = coords.shape
        x = coords[:, 0].reshape(b * h * w, 1)
        offsets = torch.linspace(-r, r, 2 * r + 1, device=coords.device, dtype=coords.dtype)
        out = []
        for i in range(self.levels):
            corr = self.pyramid[i].reshape(b * h * w, -1)
            out.append(linear_lookup(corr, x / 2 ** i + offsets))
        return torch.cat(out, dim=-1).reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
