"""MiDaS DPT: reassemble (readout ``project``), RefineNet fusion decoder, depth head, MidasCore wrapper.

Module names follow MiDaS (``pretrained.act_postprocess{k}``, ``scratch.layer{k}_rn``,
``scratch.refinenet{k}.resConfUnit{1,2}``, ``scratch.output_conv.{0,2,4}``), so ``core.core.*`` of the
released ZoeDepth checkpoints loads strictly. Every decoder resize is bilinear with ``align_corners=True``.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .beit import Beit
from .config import BeitDPTConfig

logger = logging.getLogger(__name__)

#: Names of the feature maps MidasCore returns after rel_depth (strides 1, 32, 16, 8, 4, 2).
LAYER_NAMES: Tuple[str, ...] = ('out_conv', 'l4_rn', 'r4', 'r3', 'r2', 'r1')


def resize_bilinear(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize with ``align_corners=True`` (identity, no copy, when the size already matches)."""
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=True)


class ProjectReadout(nn.Module):
    """Readout ``project``: concat every patch token with the cls token, Linear(2C, C), exact GELU."""

    def __init__(self, dim: int, start_index: int = 1) -> None:
        super().__init__()
        self.start_index = start_index
        self.project = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU())

    def forward(self, x: Tensor) -> Tensor:
        """Args: x ``(B, 1+N, C)``. Returns ``(B, N, C)``."""
        patches = x[:, self.start_index:]
        readout = x[:, 0].unsqueeze(1).expand_as(patches)
        return self.project(torch.cat((patches, readout), dim=-1))


class Reassemble(nn.Sequential):
    """``act_postprocess{k}``: [0] readout, [1]/[2] token -> map reshape (no weights), [3] 1x1 conv,
    [4] resample: ``'up4'`` ConvTranspose 4x4/4, ``'up2'`` ConvTranspose 2x2/2, ``'none'``, ``'down2'`` 3x3/2.
    """

    def __init__(self, vit_dim: int, out_channels: int, resample: str) -> None:
        layers: List[nn.Module] = [ProjectReadout(vit_dim), nn.Identity(), nn.Identity(),
                                   nn.Conv2d(vit_dim, out_channels, kernel_size=1)]
        if resample == 'up4':
            layers.append(nn.ConvTranspose2d(out_channels, out_channels, kernel_size=4, stride=4))
        elif resample == 'up2':
            layers.append(nn.ConvTranspose2d(out_channels, out_channels, kernel_size=2, stride=2))
        elif resample == 'down2':
            layers.append(nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=2, padding=1))
        elif resample != 'none':
            raise ValueError(f'unknown resample {resample!r}')
        super().__init__(*layers)

    def forward(self, tokens: Tensor, grid: Tuple[int, int],  # type: ignore[override]
                intermediates: Optional[Dict[str, Tensor]] = None, name: str = '') -> Tensor:
        """Args: tokens ``(B, 1+h*w, C)``; grid ``(h, w)``. Returns ``(B, F, h*s, w*s)``."""
        x = self[0](tokens)
        if intermediates is not None:
            intermediates[f'readout{name}'] = x
        x = x.transpose(1, 2).unflatten(2, grid)
        x = self[3](x)
        if intermediates is not None:
            intermediates[f'reassemble{name}.conv1x1'] = x
        if len(self) > 4:
            x = self[4](x)
            if intermediates is not None:
                intermediates[f'reassemble{name}.resample'] = x
        return x


class BeitBackbone(nn.Module):
    """``pretrained``: the BEiT model plus the four reassemble stages (strides 4, 8, 16, 32)."""

    def __init__(self, cfg: BeitDPTConfig = BeitDPTConfig()) -> None:
        super().__init__()
        self.config = cfg
        self.model = Beit(cfg)
        ch = cfg.reassemble_channels
        self.act_postprocess1 = Reassemble(cfg.embed_dim, ch[0], 'up4')
        self.act_postprocess2 = Reassemble(cfg.embed_dim, ch[1], 'up2')
        self.act_postprocess3 = Reassemble(cfg.embed_dim, ch[2], 'none')
        self.act_postprocess4 = Reassemble(cfg.embed_dim, ch[3], 'down2')

    def forward(self, x: Tensor, intermediates: Optional[Dict[str, Tensor]] = None) -> List[Tensor]:
        """Args: x ``(B,3,H,W)`` normalised. Returns 4 maps at strides 4, 8, 16, 32."""
        grid = (x.shape[-2] // self.config.patch_size, x.shape[-1] // self.config.patch_size)
        hooked = self.model(x, self.config.hooks, intermediates)
        stages = (self.act_postprocess1, self.act_postprocess2, self.act_postprocess3, self.act_postprocess4)
        return [stage(t, grid, intermediates, str(k + 1)) for k, (stage, t) in enumerate(zip(stages, hooked))]


class ResidualConvUnit(nn.Module):
    """``conv2(relu(conv1(relu(x)))) + x`` with 3x3 biased convolutions."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FeatureFusionBlock(nn.Module):
    """RefineNet fusion: ``out_conv(up(RCU2(a + RCU1(b))))`` (``b`` optional), up to ``size`` or x2."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, a: Tensor, b: Optional[Tensor] = None, size: Optional[Sequence[int]] = None,
                intermediates: Optional[Dict[str, Tensor]] = None, name: str = '') -> Tensor:
        out = a
        if b is not None:
            res = self.resConfUnit1(b)
            if intermediates is not None:
                intermediates[f'{name}.rcu1'] = res
            out = out + res
        out = self.resConfUnit2(out)
        if intermediates is not None:
            intermediates[f'{name}.rcu2'] = out
        if size is None:
            size = (2 * out.shape[-2], 2 * out.shape[-1])
        return self.out_conv(resize_bilinear(out, size))


class Upsample2x(nn.Module):
    """Bilinear x2, ``align_corners=True`` (index 1 of the MiDaS head; no weights)."""

    def forward(self, x: Tensor) -> Tensor:
        return resize_bilinear(x, (2 * x.shape[-2], 2 * x.shape[-1]))


class DepthHead(nn.Sequential):
    """``output_conv``: 3x3 F->F/2, up x2, 3x3 -> head_features_2, ReLU (= out_conv), 1x1 -> 1, ReLU.

    ``upsample=False`` (light models) keeps the output at the input grid (stride 2 of the network input).
    """

    def __init__(self, features: int, head_features_2: int = 32, non_negative: bool = True,
                 upsample: bool = True) -> None:
        super().__init__(
            nn.Conv2d(features, features // 2, kernel_size=3, padding=1),
            Upsample2x() if upsample else nn.Identity(),
            nn.Conv2d(features // 2, head_features_2, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(head_features_2, 1, kernel_size=1),
            nn.ReLU() if non_negative else nn.Identity(),
        )

    def forward(self, x: Tensor,  # type: ignore[override]
                intermediates: Optional[Dict[str, Tensor]] = None) -> Tuple[Tensor, Tensor]:
        """Args: x ``(B,F,h,w)``.

        Returns: rel_depth ``(B,2h,2w)`` and out_conv ``(B,head_features_2,2h,2w)`` (``h, w`` without
        upsampling).
        """
        y0 = self[0](x)
        y1 = self[1](y0)
        y2 = self[2](y1)
        out_conv = self[3](y2)
        y4 = self[4](out_conv)
        rel = self[5](y4)
        if intermediates is not None:
            intermediates.update({'output_conv.0': y0, 'output_conv.1': y1, 'output_conv.2': y2,
                                  'output_conv.4': y4})
        return rel.squeeze(1), out_conv


class DPTDecoder(nn.Module):
    """``scratch``: 3x3 projections of four maps (strides 4..32), RefineNet fusion and the depth head.

    Usable with any encoder: ``in_channels`` are the channels of the four input maps. ``output_stride=2``
    drops the head's final x2 upsampling (rel_depth and out_conv at half the network resolution).
    """

    def __init__(self, in_channels: Sequence[int], features: int = 256, head_features_2: int = 32,
                 non_negative: bool = True, output_stride: int = 1) -> None:
        super().__init__()
        if len(in_channels) != 4:
            raise ValueError(f'in_channels needs 4 entries, got {in_channels}')
        if output_stride not in (1, 2):
            raise ValueError(f'output_stride must be 1 or 2, got {output_stride}')
        self.features = features
        self.layer1_rn = nn.Conv2d(in_channels[0], features, kernel_size=3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(in_channels[1], features, kernel_size=3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(in_channels[2], features, kernel_size=3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(in_channels[3], features, kernel_size=3, padding=1, bias=False)
        self.refinenet1 = FeatureFusionBlock(features)
        self.refinenet2 = FeatureFusionBlock(features)
        self.refinenet3 = FeatureFusionBlock(features)
        self.refinenet4 = FeatureFusionBlock(features)
        self.output_conv = DepthHead(features, head_features_2, non_negative, upsample=output_stride == 1)

    def forward(self, layers: Sequence[Tensor], intermediates: Optional[Dict[str, Tensor]] = None
                ) -> Tuple[Tensor, List[Tensor]]:
        """Args: layers: 4 maps at strides 4, 8, 16, 32 (relative to the network input).

        Returns:
            rel_depth ``(B, H, W)`` (H, W = 2x the stride-2 grid) and
            ``[out_conv (B,32,H,W), l4_rn, r4, r3, r2, r1]`` (strides 1, 32, 16, 8, 4, 2); with
            ``output_stride=2`` rel_depth and out_conv are at stride 2.
        """
        l1 = self.layer1_rn(layers[0])
        l2 = self.layer2_rn(layers[1])
        l3 = self.layer3_rn(layers[2])
        l4 = self.layer4_rn(layers[3])
        if intermediates is not None:
            intermediates.update({'layer1_rn': l1, 'layer2_rn': l2, 'layer3_rn': l3, 'layer4_rn': l4})
        r4 = self.refinenet4(l4, None, l3.shape[-2:], intermediates, 'refinenet4')
        r3 = self.refinenet3(r4, l3, l2.shape[-2:], intermediates, 'refinenet3')
        r2 = self.refinenet2(r3, l2, l1.shape[-2:], intermediates, 'refinenet2')
        r1 = self.refinenet1(r2, l1, None, intermediates, 'refinenet1')
        rel_depth, out_conv = self.output_conv(r1, intermediates)
        return rel_depth, [out_conv, l4, r4, r3, r2, r1]


class DPTBeit(nn.Module):
    """MiDaS ``DPTDepthModel(backbone='beitl16_384', non_negative=True)``: ``pretrained`` + ``scratch``."""

    def __init__(self, cfg: BeitDPTConfig = BeitDPTConfig()) -> None:
        super().__init__()
        self.config = cfg
        self.pretrained = BeitBackbone(cfg)
        self.scratch = DPTDecoder(cfg.reassemble_channels, cfg.features, cfg.head_features_2,
                                  cfg.non_negative)

    def forward(self, x: Tensor, intermediates: Optional[Dict[str, Tensor]] = None
                ) -> Tuple[Tensor, List[Tensor]]:
        return self.scratch(self.pretrained(x, intermediates), intermediates)


class MidasCore(nn.Module):
    """ZoeDepth's MidasCore: returns relative depth and the six feature maps the metric head reads.

    The input is the *normalised* network input ``(x - 0.5) / 0.5`` at network size (multiples of 16;
    ZoeDepth uses 32); resizing and normalisation live in :mod:`dro_depth.models.metric.preprocess`.
    """

    def __init__(self, cfg: BeitDPTConfig = BeitDPTConfig()) -> None:
        super().__init__()
        self.config = cfg
        self.core = DPTBeit(cfg)

    @property
    def output_channels(self) -> Tuple[int, ...]:
        """Channels of ``[out_conv, l4_rn, r4, r3, r2, r1]``."""
        f = self.config.features
        return (self.config.head_features_2, f, f, f, f, f)

    def forward(self, x: Tensor, intermediates: Optional[Dict[str, Tensor]] = None
                ) -> Tuple[Tensor, List[Tensor]]:
        """Args:
            x: ``(B, 3, H, W)`` normalised, H and W multiples of 32 (16 suffices for the BEiT).
            intermediates: optional dict filled with debugging activations.

        Returns:
            rel_depth ``(B, H, W)`` and ``[out_conv, l4_rn, r4, r3, r2, r1]``.
        """
        return self.core(x, intermediates)
