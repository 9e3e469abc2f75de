"""Conditional log-binomial output distribution over the depth bins (ZoeDepth's metric-bins head)."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn


def log_binom(n: Tensor, k: Tensor, eps: float = 1e-7) -> Tensor:
    """``log C(n, k)`` via ``n log n - k log k - (n-k) log(n-k)`` with eps-stabilised arguments."""
    n = n + eps
    k = k + eps
    return n * torch.log(n) - k * torch.log(k) - (n - k) * torch.log(n - k + eps)


class LogBinomial(nn.Module):
    """Softmax over ``k`` of ``(log C(K-1, k) + k log p + (K-1-k) log(1-p)) / t``.

    Buffers ``k_idx`` (int64 ``0..K-1``) and ``K_minus_1`` (float) are part of the released checkpoints. The
    stabilised ``k_idx + 1e-7`` is computed in the working dtype (the official float64 run does the same).
    """

    def __init__(self, n_classes: int = 64) -> None:
        super().__init__()
        self.K = n_classes
        self.register_buffer('k_idx', torch.arange(0, n_classes).view(1, -1, 1, 1))
        self.register_buffer('K_minus_1', torch.full((1, 1, 1, 1), float(n_classes - 1)))

    def forward(self, p: Tensor, t: Tensor, eps: float = 1e-4) -> Tensor:
        """Args: p ``(B, H, W)`` or ``(B,1,H,W)`` success probability; t ``(B,1,H,W)`` temperature.

        Returns: ``(B, K, H, W)`` probabilities.
        """
        if p.ndim == 3:
            p = p.unsqueeze(1)
        one_minus_p = torch.clamp(1 - p, eps, 1)
        p = torch.clamp(p, eps, 1)
        k_float = self.k_idx.to(p.dtype)
        logit = (log_binom(self.K_minus_1.to(p.dtype), k_float) + self.k_idx * torch.log(p)
                 + (self.K - 1 - self.k_idx) * torch.log(one_minus_p))
        return torch.softmax(logit / t, dim=1)


class ConditionalLogBinomial(nn.Module):
    """``mlp``: 1x1 (in+cond -> bottleneck), exact GELU, 1x1 -> 4, Softplus; gives p and the temperature t."""

    def __init__(self, in_features: int, condition_dim: int, n_classes: int = 64, bottleneck_factor: int = 2,
                 p_eps: float = 1e-4, max_temp: float = 50.0, min_temp: float = 0.0212) -> None:
        super().__init__()
        self.p_eps = p_eps
        self.max_temp = max_temp
        self.min_temp = min_temp
        self.log_binomial_transform = LogBinomial(n_classes)
        bottleneck = (in_features + condition_dim) // bottleneck_factor
        self.mlp = nn.Sequential(nn.Conv2d(in_features + condition_dim, bottleneck, 1), nn.GELU(),
                                 nn.Conv2d(bottleneck, 4, 1), nn.Softplus())

    def forward(self, x: Tensor, cond: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Args: x ``(B, in, H, W)``; cond ``(B, cond, H, W)``.

        Returns: probs ``(B, K, H, W)``, p ``(B, H, W)``, t ``(B, 1, H, W)``.
        """
        pt = self.mlp(torch.cat((x, cond), dim=1))
        p = pt[:, :2] + self.p_eps
        p = p[:, 0] / (p[:, 0] + p[:, 1])
        t = pt[:, 2:] + self.p_eps
        t = (t[:, 0] / (t[:, 0] + t[:, 1])).unsqueeze(1)
        t = (self.max_temp - self.min_temp) * t + self.min_temp
        return self.log_binomial_transform(p, t), p, t
