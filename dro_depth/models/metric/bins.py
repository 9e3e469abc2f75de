"""Seed bin-centre regressors (softplus / normed) and the 1x1 projector MLP of the ZoeDepth head."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Projector(nn.Module):
    """1x1 conv -> ReLU -> 1x1 conv (``_net.0`` / ``_net.2``): bin embeddings from a feature map."""

    def __init__(self, in_features: int, out_features: int, mlp_dim: int = 128) -> None:
        super().__init__()
        self._net = nn.Sequential(nn.Conv2d(in_features, mlp_dim, 1), nn.ReLU(),
                                  nn.Conv2d(mlp_dim, out_features, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Args: x ``(B, in, h, w)``. Returns ``(B, out, h, w)``."""
        return self._net(x)


class SeedBinRegressor(nn.Module):
    """Initial bin centres per pixel.

    ``normed=False`` (softplus, N / NK): centres = Softplus(conv(ReLU(conv(x)))), unbounded; min/max unused.
    ``normed=True`` (K): widths = (ReLU(...) + 1e-3) normalised to sum 1 and scaled to ``max - min``;
    edges = cumsum(min, widths); centres = edge midpoints, inside ``[min_depth, max_depth]``.
    """

    def __init__(self, in_features: int, n_bins: int = 64, mlp_dim: int = 256, normed: bool = False,
                 min_depth: float = 1e-3, max_depth: float = 10.0) -> None:
        super().__init__()
        self.normed = normed
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self._net = nn.Sequential(nn.Conv2d(in_features, mlp_dim, 1), nn.ReLU(),
                                  nn.Conv2d(mlp_dim, n_bins, 1), nn.ReLU() if normed else nn.Softplus())

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Args: x ``(B, C, h, w)``.

        Returns:
            ``b_prev`` (what the attractors refine: the centres themselves for softplus, the centres mapped to
            ``[0, 1]`` by ``(c - min) / (max - min)`` for normed) and the centres in metres, both
            ``(B, n_bins, h, w)``.
        """
        out = self._net(x)
        if not self.normed:
            return out, out
        widths = out + 1e-3
        widths = widths / widths.sum(dim=1, keepdim=True)
        widths = (self.max_depth - self.min_depth) * widths
        widths = F.pad(widths, (0, 0, 0, 0, 1, 0), mode='constant', value=self.min_depth)
        edges = torch.cumsum(widths, dim=1)
        centers = 0.5 * (edges[:, :-1] + edges[:, 1:])
        return (centers - self.min_depth) / (self.max_depth - self.min_depth), centers
