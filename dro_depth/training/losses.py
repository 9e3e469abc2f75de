"""Training losses: supervised (inverse depth + pose reprojection), self-supervised (photometric), SILog,
scale-and-shift-invariant.

All functions take batched tensors, are differentiable, and state shapes in their docstrings.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import kornia
import torch
import torch.nn.functional as F

from dro_depth.geometry import pose_vec_to_matrix
from dro_depth.geometry import backproject, warp_to_target

__all__ = ['sequence_weights', 'supervised_inv_depth_loss', 'pose_reprojection_loss', 'supervised_loss',
           'photometric_error', 'self_supervised_loss', 'edge_aware_smoothness', 'silog_loss',
           'scale_shift_invariant_loss']


def sequence_weights(n: int, gamma: float = 0.8) -> List[float]:
    """Weights for n predictions (initial first): gamma^(n-1-i), so later iterations weigh most and the
    weights decay toward early steps."""
    return [gamma ** (n - 1 - i) for i in range(n)]


def supervised_inv_depth_loss(inv_preds: Sequence[torch.Tensor], depth_gt: torch.Tensor,
                              gamma: float = 0.8) -> torch.Tensor:
    """L1 on inverse depth over the iterations.

    Args:
        inv_preds: predictions [B, 1, H, W], initial first.
        depth_gt: [B, 1, H, W] metres; non-finite or <= 0 is ignored.
    """
    valid = torch.isfinite(depth_gt) & (depth_gt > 0)
    inv_gt = torch.where(valid, 1.0 / depth_gt.clamp(min=1e-6), torch.zeros_like(depth_gt))
    denom = valid.sum().clamp(min=1)
    loss = depth_gt.new_zeros(())
    for w, pred in zip(sequence_weights(len(inv_preds), gamma), inv_preds):
        loss = loss + w * ((pred - inv_gt).abs() * valid).sum() / denom
    return loss


def pose_reprojection_loss(pose_preds: Sequence[torch.Tensor], T_ref_tgt_gt: torch.Tensor,
                           depth_gt: torch.Tensor, K: torch.Tensor, gamma: float = 0.8,
                           stride: int = 4) -> torch.Tensor:
    """Mean pixel distance between target points reprojected with predicted vs true relative poses.

    Args:
        pose_preds: DRO pose vectors [B, N, 6] per iteration, initial first.
        T_ref_tgt_gt: [B, N, 4, 4] true transforms target -> reference.
        depth_gt: [B, 1, H, W] target depth; K: [B, 3, 3].
        stride: pixel subsampling (the loss is smooth; every pixel is not needed).
    """
    d = depth_gt[:, :, ::stride, ::stride]
    Ks = K.clone()
    Ks[:, :2] = Ks[:, :2] / stride       # pixel stride*i of the full map is pixel i of the subsampled one
    valid = (torch.isfinite(d) & (d > 0))[:, 0]                       # [B, h, w]
    pts = backproject(torch.nan_to_num(d, nan=0.0), Ks)                # [B, h, w, 3]
    B, N = T_ref_tgt_gt.shape[:2]

    def project(T: torch.Tensor) -> torch.Tensor:                      # T [B, N, 4, 4] -> [B, N, h, w, 2]
        p = (T[:, :, None, None, :3, :3] @ pts[:, None, ..., None])[..., 0] + T[:, :, None, None, :3, 3]
        z = p[..., 2:3].clamp(min=1e-3)
        uv = p[..., :2] / z
        return uv * torch.stack([Ks[:, 0, 0], Ks[:, 1, 1]], -1)[:, None, None, None]

    target_uv = project(T_ref_tgt_gt.to(pts.dtype))
    m = valid[:, None].expand(B, N, *valid.shape[1:])
    denom = m.sum().clamp(min=1)
    loss = depth_gt.new_zeros(())
    for w, vec in zip(sequence_weights(len(pose_preds), gamma), pose_preds):
        err = (project(pose_vec_to_matrix(vec)) - target_uv).norm(dim=-1)
        loss = loss + w * (err * m).sum() / denom
    return loss


def supervised_loss(out, depth_gt: torch.Tensor, T_ref_tgt_gt: torch.Tensor, K: torch.Tensor,
                    gamma: float = 0.8, pose_weight: float = 0.05) -> Dict[str, torch.Tensor]:
    """Supervised DRO loss on a model output with ``inv_depth_iters`` and ``poses_iters``."""
    l_depth = supervised_inv_depth_loss(out.inv_depth_iters, depth_gt, gamma)
    l_pose = pose_reprojection_loss(out.poses_iters, T_ref_tgt_gt, depth_gt, K, gamma)
    return {'loss': l_depth + pose_weight * l_pose, 'depth': l_depth.detach(), 'pose': l_pose.detach()}


def photometric_error(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.85) -> torch.Tensor:
    """Per-pixel 0.85 * (1 - SSIM) / 2 + 0.15 * L1, images [B, 3, H, W] in [0, 1] -> [B, 1, H, W]."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    ssim = kornia.metrics.ssim(pred, target, window_size=3, padding='same')
    dssim = ((1.0 - ssim) / 2.0).clamp(0, 1).mean(1, keepdim=True)
    return alpha * dssim + (1.0 - alpha) * l1


def edge_aware_smoothness(inv_depth: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware first-order smoothness of mean-normalised inverse depth [B, 1, H, W]."""
    d = inv_depth / (inv_depth.mean(dim=(2, 3), keepdim=True) + 1e-7)
    dx = (d[..., :, 1:] - d[..., :, :-1]).abs()
    dy = (d[..., 1:, :] - d[..., :-1, :]).abs()
    ix = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1, keepdim=True)
    iy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1, keepdim=True)
    return (dx * torch.exp(-ix)).mean() + (dy * torch.exp(-iy)).mean()


def self_supervised_loss(out, target: torch.Tensor, refs: torch.Tensor, K: torch.Tensor, gamma: float = 0.8,
                         smooth_weight: float = 1e-3, automask: bool = True) -> Dict[str, torch.Tensor]:
    """Self-supervised DRO loss (Monodepth2 style) over all iterations.

    Photometric 0.85 SSIM + 0.15 L1 between the target and each reference warped with the predicted depth
    and pose, the per-pixel minimum over references, auto-masking of pixels where an unwarped reference
    already matches better (static camera, objects moving with it), and edge-aware smoothness.

    Args:
        out: model output with ``inv_depth_iters`` ([B, 1, H, W] each) and ``poses_iters`` ([B, N, 6] each).
        target: [B, 3, H, W]; refs: [B, N, 3, H, W] in [0, 1]; K: [B, 3, 3].
    """
    B, N = refs.shape[:2]
    identity = torch.stack([photometric_error(refs[:, n], target) for n in range(N)], 1)   # [B, N, 1, H, W]
    identity_min = identity.min(1).values
    # A tiny noise breaks ties, as in Monodepth2.
    identity_min = identity_min + 1e-5 * torch.randn_like(identity_min)
    loss = target.new_zeros(())
    photo_last = target.new_zeros(())
    mask_ratio = target.new_zeros(())
    for w, inv, vec in zip(sequence_weights(len(out.inv_depth_iters), gamma), out.inv_depth_iters,
                           out.poses_iters):
        depth = 1.0 / inv.clamp(min=1e-3)
        T = pose_vec_to_matrix(vec)                                   # [B, N, 4, 4]
        errs = []
        for n in range(N):
            warped, valid = warp_to_target(refs[:, n], depth, K, K, T[:, n], padding_mode='border')
            e = photometric_error(warped, target)
            errs.append(torch.where(valid, e, torch.full_like(e, 1e3)))
        reproj = torch.stack(errs, 1).min(1).values                   # [B, 1, H, W]
        mask = (reproj < identity_min) if automask else (reproj < 1e3)
        mask = mask & (reproj < 1e3)
        photo = (reproj * mask).sum() / mask.sum().clamp(min=1)
        smooth = edge_aware_smoothness(inv, target)
        loss = loss + w * (photo + smooth_weight * smooth)
        photo_last, mask_ratio = photo.detach(), mask.float().mean().detach()
    return {'loss': loss, 'photometric': photo_last, 'automask_ratio': mask_ratio}


def silog_loss(pred: torch.Tensor, gt: torch.Tensor, lam: float = 0.85, valid: Optional[torch.Tensor] = None,
               eps: float = 1e-6) -> torch.Tensor:
    """Scale-invariant log loss (Eigen et al.), as used by ZoeDepth: sqrt(Var + (1-lam) mean^2) * 10.

    Args:
        pred, gt: [B, 1, H, W] metres; valid: optional bool mask (default: finite gt > 0).
    """
    if valid is None:
        valid = torch.isfinite(gt) & (gt > 0)
    if pred.shape[-2:] != gt.shape[-2:]:
        pred = F.interpolate(pred, size=gt.shape[-2:], mode='bilinear', align_corners=True)
    g = torch.log(pred[valid].clamp(min=eps)) - torch.log(gt[valid].clamp(min=eps))
    if g.numel() < 2:
        return pred.sum() * 0.0
    dg = g.var(unbiased=False) + (1.0 - lam) * g.mean() ** 2
    return 10.0 * torch.sqrt(dg.clamp(min=1e-12))


def scale_shift_invariant_loss(pred: torch.Tensor, target: torch.Tensor,
                               valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Affine-invariant L1 (MiDaS / Depth Anything) on disparity-like maps [B, H, W] or [B, 1, H, W].

    Each map is normalised by its median and mean absolute deviation over valid pixels before the L1.
    """
    if pred.dim() == 4:
        pred, target = pred[:, 0], target[:, 0]
        valid = valid[:, 0] if valid is not None else None
    if valid is None:
        valid = torch.isfinite(target)
    losses = []
    for p, t, m in zip(pred, target, valid):
        if m.sum() < 2:
            continue
        pv, tv = p[m], t[m]
        pn = (pv - pv.median()) / (pv - pv.median()).abs().mean().clamp(min=1e-6)
        tn = (tv - tv.median()) / (tv - tv.median()).abs().mean().clamp(min=1e-6)
        losses.append((pn - tn).abs().mean())
    return torch.stack(losses).mean() if losses else pred.sum() * 0.0
