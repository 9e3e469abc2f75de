"""Depth Anything V2: DINOv2 ViT/14 encoder + DPT head, relative or metric output."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from dro_depth.errors import DroDepthError
from .config import DepthAnythingConfig
from .dinov2 import DinoVisionTransformer
from .dpt import DPTHead

__all__ = ['DepthAnythingV2']


class DepthAnythingV2(nn.Module):
    """State-dict compatible with the released relative and metric checkpoints (``pretrained.*``,
    ``depth_head.*``).

    Calling it on a normalised ``float (B, 3, H, W)`` image (H, W multiples of 14) returns ``(B, H, W)``:
    ReLU relative inverse depth (affine-invariant, larger = nearer), or metres (sigmoid x ``max_depth``)
    when ``cfg.metric``.
    """

    def __init__(self, cfg: DepthAnythingConfig) -> None:
        super().__init__()
        self.cfg = cfg.validate()
        self.pretrained = DinoVisionTransformer(cfg)
        self.depth_head = DPTHead(cfg.embed_dim, cfg.features, cfg.out_channels, metric=cfg.metric,
                                  head_features_2=cfg.head_features_2, patch_size=cfg.patch_size)

    @property
    def metric(self) -> bool:
        """True when the output is metres."""
        return self.cfg.metric

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`DroDepthError` unless ``x`` is ``(B, 3, H, W)`` with H, W multiples of 14."""
        p = self.cfg.patch_size
        if x.dim() != 4 or x.shape[1] != 3:
            raise DroDepthError(f'Depth Anything expects a (B, 3, H, W) image, got {tuple(x.shape)}')
        h, w = x.shape[-2:]
        if h < p or w < p or h % p or w % p:
            raise DroDepthError(f'Depth Anything input {h}x{w} must be at least {p} px and a multiple of '
                                f'{p} in both sides (use preprocess.image_to_tensor to resize)')

    def forward(self, x: Tensor) -> Tensor:
        """``float (B, 3, H, W)`` normalised -> ``(B, H, W)`` relative inverse depth or metres."""
        self.check_input(x)
        gh, gw = x.shape[-2] // self.cfg.patch_size, x.shape[-1] // self.cfg.patch_size
        feats = self.pretrained.get_intermediate_layers(x, self.cfg.hooks)
        out = self.depth_head([f[0] for f in feats], gh, gw)
        out = out * self.cfg.max_depth if self.cfg.metric else F.relu(out)
        return out.squeeze(1)
