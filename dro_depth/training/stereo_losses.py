"""NeRF-Supervised stereo losses: triplet photometric loss, AO-weighted proxy-disparity L1, sequence weights.

Facts from the NS release (code snippets) and RAFT-Stereo; disparity is **positive** here (the centre pixel
``x`` matches ``x + d`` in the left image and ``x - d`` in the right one). RAFT-Stereo's raw ``flow_up`` is
negative: pass ``-flow_up``. Images are RGB in [0, 1] for the SSIM constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ['ssim_distance', 'photometric_error', 'warp_horizontal', 'triplet_photometric_loss',
           'proxy_disparity_loss', 'stereo_sequence_weights', 'NSLossConfig', 'ns_sequence_loss']

_C1 = 0.01 ** 2
_C2 = 0.03 ** 2


def ssim_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``clamp((1 - SSIM) / 2, 0, 1)`` with 7x7 average pooling on reflection-padded (3 px) images.

    Args:
        x, y: float (B, C, H, W), values in [0, 1].

    Returns:
        float (B, C, H, W).
    """
    x = F.pad(x, [3, 3, 3, 3], mode='reflect')
    y = F.pad(y, [3, 3, 3, 3], mode='reflect')
    mu_x, mu_y = F.avg_pool2d(x, 7, 1), F.avg_pool2d(y, 7, 1)
    sigma_x = F.avg_pool2d(x * x, 7, 1) - mu_x ** 2
    sigma_y = F.avg_pool2d(y * y, 7, 1) - mu_y ** 2
    sigma_xy = F.avg_pool2d(x * y, 7, 1) - mu_x * mu_y
    num = (2 * mu_x * mu_y + _C1) * (2 * sigma_xy + _C2)
    den = (mu_x ** 2 + mu_y ** 2 + _C1) * (sigma_x + sigma_y + _C2)
    return torch.clamp((1 - num / den) / 2, 0, 1)


def photometric_error(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.85) -> torch.Tensor:
    """``alpha * mean_c SSIM distance + (1 - alpha) * mean_c |pred - target|``.

    Args:
        pred, target: float (B, C, H, W) in [0, 1].

    Returns:
        float (B, 1, H, W).
    """
    l1 = (pred - target).abs().mean(1, keepdim=True)
    return alpha * ssim_distance(pred, target).mean(1, keepdim=True) + (1 - alpha) * l1


def warp_horizontal(image: torch.Tensor, shift: torch.Tensor, official_grid: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` at ``x + shift`` (bilinear, border padding) and say where that stays inside.

    Args:
        image: float (B, C, H, W). shift: float (B, 1, H, W) pixels.
        official_grid: reproduce the NS snippet's grid (``2x/(W-1) - 1`` with ``align_corners=False``,
            which shifts samples by up to half a pixel); default: exact pixel-centre sampling.

    Returns:
        ``(warped (B, C, H, W), inside (B, 1, H, W) float 0/1)``.
    """
    b, _, h, w = image.shape
    xs = torch.arange(w, device=image.device, dtype=image.dtype).view(1, 1, 1, w)
    ys = torch.arange(h, device=image.device, dtype=image.dtype).view(1, 1, h, 1)
    x = xs + shift
    if official_grid:
        gx, gy = 2 * x / (w - 1) - 1, (2 * ys / (h - 1) - 1).expand_as(x)
    else:
        gx, gy = (2 * x + 1) / w - 1, ((2 * ys + 1) / h - 1).expand_as(x)
    grid = torch.stack([gx[:, 0], gy[:, 0]], dim=-1)
    warped = F.grid_sample(image, grid, mode='bilinear', padding_mode='border', align_corners=False)
    inside = ((x >= 0) & (x <= w - 1)).to(image.dtype)
    return warped, inside


def triplet_photometric_loss(disparity: torch.Tensor, left: torch.Tensor, centre: torch.Tensor,
                             right: torch.Tensor, ao: torch.Tensor | None = None,
                             official_grid: bool = False) -> torch.Tensor:
    """NS triplet loss on the centre view: reconstruct it from the left at ``x + d`` and from the right at
    ``x - d``, take the per-pixel minimum, keep pixels the auto-mask accepts, weight by ``1 - AO``.

    Args:
        disparity: float (B, 1, H, W) positive centre-view disparity, pixels.
        left, centre, right: float (B, 3, H, W) RGB in [0, 1].
        ao: optional float (B, 1, H, W) rendering confidence in [0, 1] (``1 - AO`` weights the photometric
            term, so it acts where the proxy disparity is not trusted).
        official_grid: see :func:`warp_horizontal`.

    Returns:
        float scalar: mean over kept pixels of the weighted minimum error.
    """
    from_left, in_left = warp_horizontal(left, disparity, official_grid)
    from_right, in_right = warp_horizontal(right, -disparity, official_grid)
    big = torch.finfo(disparity.dtype).max / 4
    err_left = torch.where(in_left > 0, photometric_error(from_left, centre), torch.full_like(in_left, big))
    err_right = torch.where(in_right > 0, photometric_error(from_right, centre),
                            torch.full_like(in_right, big))
    err = torch.minimum(err_left, err_right)
    identity = torch.minimum(photometric_error(left, centre), photometric_error(right, centre))
    keep = (err < identity) & (err < big)
    weight = torch.ones_like(err) if ao is None else 1 - ao
    if not bool(keep.any()):
        return disparity.sum() * 0.0
    return (err * weight)[keep].mean()


def proxy_disparity_loss(disparity: torch.Tensor, target: torch.Tensor, ao: torch.Tensor) -> torch.Tensor:
    """``mean |pred - target| * AO * (target > 0)`` (NS; targets are zeroed where AO is not confident).

    Args:
        disparity: float (B, 1, H, W) positive prediction. target: float (B, 1, H, W) proxy disparity,
            0 or NaN where unknown. ao: float (B, 1, H, W) confidence.

    Returns:
        float scalar.
    """
    valid = torch.isfinite(target) & (target > 0)
    diff = torch.where(valid, (disparity - torch.nan_to_num(target)).abs() * ao, torch.zeros_like(ao))
    return diff.mean()


def stereo_sequence_weights(n: int, gamma: float = 0.9) -> list[float]:
    """RAFT-Stereo weights ``(gamma**(15/(n-1)))**(n-i-1)`` for predictions ``i = 0..n-1`` (1 for n = 1)."""
    if n < 1:
        raise ValueError(f'need at least one prediction, got {n}')
    if n == 1:
        return [1.0]
    g = gamma ** (15 / (n - 1))
    return [g ** (n - i - 1) for i in range(n)]


@dataclass(frozen=True)
class NSLossConfig:
    """Weights of the NS objective (defaults of the unofficial reproduction; NS gives no alphas)."""

    alpha_disp: float = 1.0
    alpha_photo: float = 0.1
    gamma: float = 0.9


def ns_sequence_loss(disparities: Sequence[torch.Tensor], left: torch.Tensor, centre: torch.Tensor,
                     right: torch.Tensor, target: torch.Tensor, ao: torch.Tensor,
                     cfg: NSLossConfig = NSLossConfig()) -> tuple[torch.Tensor, dict[str, float]]:
    """Sequence-weighted ``alpha_disp * L_disp + alpha_photo * L_photo`` over per-iteration predictions.

    Args:
        disparities: per-iteration positive disparities, each float (B, 1, H, W) (``-flow_up``).
        left, centre, right: float (B, 3, H, W) RGB in [0, 1]. target: proxy disparity (B, 1, H, W).
        ao: float (B, 1, H, W) confidence.

    Returns:
        ``(loss, {'disp': ..., 'photo': ...})`` (the parts of the last prediction, for logging).
    """
    weights = stereo_sequence_weights(len(disparities), cfg.gamma)
    total = disparities[0].new_zeros(())
    parts = {}
    for w, d in zip(weights, disparities):
        l_disp = proxy_disparity_loss(d, target, ao)
        l_photo = triplet_photometric_loss(d, left, centre, right, ao)
        total = total + w * (cfg.alpha_disp * l_disp + cfg.alpha_photo * l_photo)
        parts = {'disp': float(l_disp.detach()), 'photo': float(l_photo.detach())}
    return total, parts
