"""Attractor layers of the ZoeDepth head: attractor points pull the bin centres (inverse or exp law)."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

from .dpt import resize_bilinear


def inv_attractor(dx: Tensor, alpha: float = 300.0, gamma: int = 2) -> Tensor:
    """Inverse attractor shift ``dx / (1 + alpha * dx^gamma)`` with ``dx = attractor - centre``."""
    return dx.div(1 + alpha * dx.pow(gamma))


def exp_attractor(dx: Tensor, alpha: float = 300.0, gamma: int = 2) -> Tensor:
    """Exponential attractor shift ``exp(-alpha * |dx|^gamma) * dx``."""
    return torch.exp(-alpha * (torch.abs(dx) ** gamma)) * dx


class AttractorLayer(nn.Module):
    """One refinement stage: attractor points from ``x + up(prev_embedding)`` move the (upsampled) centres.

    The released models call the attractor function without alpha/gamma, so 300 and 2 are in force whatever
    the config says; they are arguments here with those defaults.

    ``normed=False`` (softplus): ``n_attractors`` Softplus points, centres unbounded.
    ``normed=True``: ``2 n_attractors`` ReLU outputs + 1e-3, the first of each pair is the point (in the
    normalised [0, 1] range); the metric centres are ``(max - min) b + min`` sorted and clipped.
    """

    def __init__(self, in_features: int, n_attractors: int = 16, mlp_dim: int = 128, normed: bool = False,
                 min_depth: float = 1e-3, max_depth: float = 10.0, alpha: float = 300.0, gamma: int = 2,
                 kind: str = 'mean', attractor_type: str = 'inv', memory_efficient: bool = False) -> None:
        super().__init__()
        if kind not in ('mean', 'sum') or attractor_type not in ('inv', 'exp'):
            raise ValueError(f'bad attractor kind/type {kind!r}/{attractor_type!r}')
        self.n_attractors = n_attractors
        self.normed = normed
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.alpha = float(alpha)
        self.gamma = int(gamma)
        self.kind = kind
        self.attractor_type = attractor_type
        self.memory_efficient = memory_efficient
        n_out = 2 * n_attractors if normed else n_attractors
        self._net = nn.Sequential(nn.Conv2d(in_features, mlp_dim, 1), nn.ReLU(),
                                  nn.Conv2d(mlp_dim, n_out, 1), nn.ReLU() if normed else nn.Softplus())

    def _shift(self, dx: Tensor) -> Tensor:
        if self.attractor_type == 'inv':
            return inv_attractor(dx, self.alpha, self.gamma)
        return exp_attractor(dx, self.alpha, self.gamma)

    def forward(self, x: Tensor, b_prev: Tensor, prev_embedding: Tensor) -> Tuple[Tensor, Tensor]:
        """Args:
            x: bin embedding of this stage ``(B, E, h, w)``.
            b_prev: previous centres (normalised for normed bins) ``(B, n_bins, h', w')``.
            prev_embedding: previous stage's embedding ``(B, E, h'', w'')``.

        Returns:
            new centres in the refinement space ``(B, n_bins, h, w)`` (fed to the next stage) and the metric
            centres ``(B, n_bins, h, w)``.
        """
        x = x + resize_bilinear(prev_embedding, x.shape[-2:])
        points = self._net(x)
        if self.normed:
            points = points + 1e-3
            points = points.view(points.shape[0], self.n_attractors, 2, *points.shape[-2:])[:, :, 0]
        centers = resize_bilinear(b_prev, points.shape[-2:])
        if self.memory_efficient:
            delta = torch.zeros_like(centers)
            for i in range(self.n_attractors):
                delta = delta + self._shift(points[:, i:i + 1] - centers)
            if self.kind == 'mean':
                delta = delta / self.n_attractors
        else:
            reduce = torch.mean if self.kind == 'mean' else torch.sum
            delta = reduce(self._shift(points.unsqueeze(2) - centers.unsqueeze(1)), dim=1)
        new = centers + delta
        if not self.normed:
            return new, new
        metric = (self.max_depth - self.min_depth) * new + self.min_depth
        metric, _ = torch.sort(metric, dim=1)
        return new, torch.clip(metric, self.min_depth, self.max_depth)
