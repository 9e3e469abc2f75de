"""DPT head of Depth Anything V2 (official parameter names under ``depth_head.``).

Reassemble (1x1 projection, then ConvTranspose k4s4 / k2s2 / identity / Conv k3s2p1), 3x3 ``layer*_rn``
convolutions, four fusion blocks upsampling bilinearly (``align_corners=True``) to the next level's size,
then ``output_conv1`` -> bilinear to ``(14*gh, 14*gw)`` -> ``output_conv2`` (conv, ReLU, conv, activation).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['DPTHead']


class ResidualConvUnit(nn.Module):
    """``x + conv2(relu(conv1(relu(x))))`` (no batch norm in the released models)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FeatureFusionBlock(nn.Module):
    """Adds the skip input (through ``resConfUnit1``), refines, resizes, then a 1x1 ``out_conv``."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1, bias=True)
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        """``(B, F, h, w)`` -> ``(B, F, *size)`` (``size`` None: twice ``(h, w)``)."""
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode='bilinear', align_corners=True)
        return self.out_conv(x)


class Scratch(nn.Module):
    """Container with the official ``scratch.*`` names: level convs, fusion blocks, output convs."""

    def __init__(self, out_channels: tuple[int, ...], features: int, head_features_2: int,
                 metric: bool) -> None:
        super().__init__()
        for i, ch in enumerate(out_channels, start=1):
            setattr(self, f'layer{i}_rn', nn.Conv2d(ch, features, 3, padding=1, bias=False))
        for i in range(1, 5):
            setattr(self, f'refinenet{i}', FeatureFusionBlock(features))
        half = features // 2
        self.output_conv1 = nn.Conv2d(features, half, 3, padding=1)
        self.output_conv2 = nn.Sequential(
            nn.Conv2d(half, head_features_2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(head_features_2, 1, 1), nn.Sigmoid() if metric else nn.ReLU())


class DPTHead(nn.Module):
    """Hooked ViT tokens -> one-channel map at 14x the patch grid.

    Args:
        in_channels: ViT embedding width. features: fusion width. out_channels: 4 reassemble widths.
        metric: sigmoid final activation (else ReLU).
    """

    def __init__(self, in_channels: int, features: int, out_channels: tuple[int, ...],
                 metric: bool = False, head_features_2: int = 32, patch_size: int = 14) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.projects = nn.ModuleList(nn.Conv2d(in_channels, ch, 1) for ch in out_channels)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(out_channels[0], out_channels[0], kernel_size=4, stride=4),
            nn.ConvTranspose2d(out_channels[1], out_channels[1], kernel_size=2, stride=2),
            nn.Identity(),
            nn.Conv2d(out_channels[3], out_channels[3], kernel_size=3, stride=2, padding=1)])
        self.scratch = Scratch(tuple(out_channels), features, head_features_2, metric)

    def reassemble(self, tokens: list[Tensor], gh: int, gw: int) -> list[Tensor]:
        """Patch tokens ``(B, gh*gw, C)`` x4 -> feature maps at 4x, 2x, 1x, 1/2x the grid."""
        out = []
        for i, t in enumerate(tokens):
            x = t.permute(0, 2, 1).reshape(t.shape[0], t.shape[-1], gh, gw)
            out.append(self.resize_layers[i](self.projects[i](x)))
        return out

    def forward(self, tokens: list[Tensor], gh: int, gw: int) -> Tensor:
        """Tokens of the 4 hooked blocks (patch part only) -> ``(B, 1, 14*gh, 14*gw)`` activated map."""
        s = self.scratch
        l1, l2, l3, l4 = self.reassemble(tokens, gh, gw)
        l1, l2, l3, l4 = s.layer1_rn(l1), s.layer2_rn(l2), s.layer3_rn(l3), s.layer4_rn(l4)
        p = s.refinenet4(l4, size=l3.shape[2:])
        p = s.refinenet3(p, l3, size=l2.shape[2:])
        p = s.refinenet2(p, l2, size=l1.shape[2:])
        p = s.refinenet1(p, l1)
        out = s.output_conv1(p)
        out = F.interpolate(out, size=(gh * self.patch_size, gw * self.patch_size), mode='bilinear',
                            align_corners=True)
        return s.output_conv2(out)
