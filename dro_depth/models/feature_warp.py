"""Feature-metric warping used by DRO's cost volume (all at 1/8 resolution).

A target pixel (x, y) on the integer grid (no half-pixel offset) is back-projected with the
(pseudo-)inverse of the scaled intrinsics and its depth, moved into the reference camera by the pose
``X_ref = R X_tgt + t`` (R = Rx @ Ry @ Rz), projected, divided by Z clamped to >= 1e-5, normalised
with ``align_corners=True`` conventions and used to bilinearly sample the reference feature map with
zero padding. Nothing is masked. Cost = (target features - warped reference features)^2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['euler_to_rotation', 'inv_depth_to_depth', 'scale_intrinsics', 'FeatureWarper']


def euler_to_rotation(angles: torch.Tensor) -> torch.Tensor:
    """Euler angles [M,3] = (rx, ry, rz) in radians -> rotation matrices R = Rx @ Ry @ Rz [M,3,3]."""
    x, y, z = angles.unbind(-1)
    zeros = torch.zeros_like(x)
    ones = torch.ones_like(x)
    cz, sz = torch.cos(z), torch.sin(z)
    cy, sy = torch.cos(y), torch.sin(y)
    cx, sx = torch.cos(x), torch.sin(x)
    rz = torch.stack([cz, -sz, zeros, sz, cz, zeros, zeros, zeros, ones], dim=-1).view(-1, 3, 3)
    ry = torch.stack([cy, zeros, sy, zeros, ones, zeros, -sy, zeros, cy], dim=-1).view(-1, 3, 3)
    rx = torch.stack([ones, zeros, zeros, zeros, cx, -sx, zeros, sx, cx], dim=-1).view(-1, 3, 3)
    return rx.bmm(ry).bmm(rz)


def inv_depth_to_depth(inv_depth: torch.Tensor) -> torch.Tensor:
    """Inverse depth -> depth: 1 / max(inv, 1e-6), and 0 where inv <= 0. Any shape."""
    depth = 1.0 / inv_depth.clamp(min=1e-6)
    return torch.where(inv_depth <= 0, torch.zeros_like(depth), depth)


def scale_intrinsics(K: torch.Tensor, scale: float) -> torch.Tensor:
    """Scale pixel intrinsics [M,3,3] to an image resized by ``scale``.

    fx, fy are multiplied by ``scale``; cx, cy become (c + 0.5) * scale - 0.5 (pixel-centre convention);
    other entries (skew, last row) are kept.
    """
    Ks = K.clone()
    Ks[:, 0, 0] = K[:, 0, 0] * scale
    Ks[:, 1, 1] = K[:, 1, 1] * scale
    Ks[:, 0, 2] = (K[:, 0, 2] + 0.5) * scale - 0.5
    Ks[:, 1, 2] = (K[:, 1, 2] + 0.5) * scale - 0.5
    return Ks


def _pseudo_inverse_intrinsics(K: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of pinhole intrinsics [M,3,3] from fx, fy, cx, cy (skew entry kept as is,
    matching the official camera model)."""
    Kinv = K.clone()
    fx, fy, cx, cy = K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]
    Kinv[:, 0, 0] = 1.0 / fx
    Kinv[:, 1, 1] = 1.0 / fy
    Kinv[:, 0, 2] = -1.0 * cx / fx
    Kinv[:, 1, 2] = -1.0 * cy / fy
    return Kinv


class FeatureWarper:
    """Warps reference feature maps into the target view for a fixed camera and feature size.

    Built once per forward pass. The rows of every batched tensor are (reference n, batch b) pairs in
    n-major order, M = N * B: row ``n * B + b``.

    Args:
        K: pixel intrinsics [B,3,3] at the input resolution.
        num_refs: N.
        height: h of the feature maps.
        width: w of the feature maps.
        scale: feature resolution / input resolution (1/8 for DRO).
    """

    def __init__(self, K: torch.Tensor, num_refs: int, height: int, width: int, scale: float) -> None:
        self.height = height
        self.width = width
        self.num_refs = num_refs
        Ks = scale_intrinsics(K, scale).repeat(num_refs, 1, 1)  # [M,3,3]
        self.K = Ks
        xs = torch.arange(width, dtype=K.dtype, device=K.device)
        ys = torch.arange(height, dtype=K.dtype, device=K.device)
        gy, gx = torch.meshgrid(ys, xs, indexing='ij')
        grid = torch.stack([gx, gy, torch.ones_like(gx)], dim=0).view(1, 3, height * width)
        # Back-projection rays Kinv @ [x, y, 1] for every pixel: [M,3,h*w]
        self.rays = _pseudo_inverse_intrinsics(Ks).bmm(grid.expand(Ks.shape[0], 3, height * width))

    def points(self, depth: torch.Tensor) -> torch.Tensor:
        """3-D points in the target camera: depth [M,1,h,w] -> [M,3,h*w]."""
        return self.rays * depth.reshape(depth.shape[0], 1, -1)

    def sample_coords(self, points: torch.Tensor, rotation: torch.Tensor,
                      translation: torch.Tensor) -> torch.Tensor:
        """Project target-camera points into the reference cameras.

        Args:
            points: [M,3,h*w] target-camera points.
            rotation: [M,3,3]; translation: [M,3] (X_ref = R X + t).

        Returns:
            grid_sample coordinates [M,h,w,2] (align_corners=True normalisation).
        """
        cam = rotation.bmm(points) + translation.unsqueeze(-1)
        pix = self.K.bmm(cam)
        z = pix[:, 2].clamp(min=1e-5)
        u = 2 * (pix[:, 0] / z) / (self.width - 1) - 1.0
        v = 2 * (pix[:, 1] / z) / (self.height - 1) - 1.0
        return torch.stack([u, v], dim=-1).view(-1, self.height, self.width, 2)

    def warp(self, fmap_ref: torch.Tensor, points: torch.Tensor, rotation: torch.Tensor,
             translation: torch.Tensor) -> torch.Tensor:
        """Sample reference features [M,C,h,w] at the projections of ``points`` -> [M,C,h,w]."""
        coords = self.sample_coords(points, rotation, translation)
        return F.grid_sample(fmap_ref, coords, mode='bilinear', padding_mode='zeros', align_corners=True)
