"""Inverse warping of a source image into a target view with the target's depth.

Used by the self-supervised photometric loss and by geometry checks. Differentiable, batched, any device.
"""
from __future__ import annotations

from typing import Tuple

import kornia
import torch
import torch.nn.functional as F

__all__ = ['backproject', 'warp_to_target']


def backproject(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pixels of a depth map to camera-frame points.

    Args:
        depth: [B, 1, H, W] depth along optical z.
        K: [B, 3, 3] intrinsics of that view.

    Returns:
        [B, H, W, 3] points (pixel centres at integer coordinates).
    """
    return kornia.geometry.depth.depth_to_3d_v2(depth[:, 0], K).to(depth.dtype)


def warp_to_target(src: torch.Tensor, depth_tgt: torch.Tensor, K_tgt: torch.Tensor, K_src: torch.Tensor,
                   T_src_tgt: torch.Tensor, padding_mode: str = 'zeros') -> Tuple[torch.Tensor, torch.Tensor]:
    """Sample ``src`` at the projections of the target's pixels.

    Args:
        src: [B, C, Hs, Ws] source image.
        depth_tgt: [B, 1, H, W] target depth (> 0 where valid).
        K_tgt: [B, 3, 3] target intrinsics; K_src: [B, 3, 3] source intrinsics.
        T_src_tgt: [B, 4, 4] maps target-camera points into the source camera.
        padding_mode: passed to ``grid_sample``.

    Returns:
        (warped [B, C, H, W], valid [B, 1, H, W] bool): valid where the depth is positive, the point lies
        in front of the source camera and projects inside the source image.
    """
    B, _, Hs, Ws = src.shape
    pts = backproject(depth_tgt, K_tgt)                                    # [B, H, W, 3]
    R, t = T_src_tgt[:, None, None, :3, :3], T_src_tgt[:, None, None, :3, 3]
    pts_src = (R @ pts[..., None])[..., 0] + t
    z = pts_src[..., 2:3]
    uv = kornia.geometry.camera.perspective.project_points(pts_src, K_src[:, None, None])  # [B, H, W, 2]
    grid = torch.stack([2.0 * uv[..., 0] / (Ws - 1) - 1.0, 2.0 * uv[..., 1] / (Hs - 1) - 1.0], dim=-1)
    warped = F.grid_sample(src, grid.to(src.dtype), mode='bilinear', padding_mode=padding_mode,
                           align_corners=True)
    inside = (grid.abs() <= 1.0).all(dim=-1)
    valid = inside & (z[..., 0] > 1e-6) & (depth_tgt[:, 0] > 0) & torch.isfinite(depth_tgt[:, 0])
    return warped, valid[:, None]
