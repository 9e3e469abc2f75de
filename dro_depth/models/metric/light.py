"""Light metric-depth model: ResNet-18 features + small DPT decoder + the (width-configurable) ZoeDepth head.

The core returns what the metric head reads from MiDaS: rel_depth ``(B,H,W)`` and ``[out_conv (32 ch, full
res), l4_rn, r4, r3, r2, r1]`` with a configurable width instead of 256. ResNet key names follow torchvision
(``conv1``, ``bn1``, ``layer{1..4}.{0,1}.conv1`` ..., ``downsample.0/.1``) so ImageNet weights could be loaded
into ``core.encoder``. No weights ship with it: it is meant to be trained (e.g. on synthetic scenes).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ZoeDepthHeadConfig
from .dpt import DPTDecoder
from .zoedepth import ZoeDepth


class BasicBlock(nn.Module):
    """ResNet basic block (3x3-BN-ReLU-3x3-BN + shortcut, ReLU) with trainable BatchNorm."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: Optional[nn.Sequential] = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18Features(nn.Module):
    """ResNet-18 trunk returning ``layer1..layer4`` (strides 4, 8, 16, 32; 64, 128, 256, 512 channels)."""

    channels: Tuple[int, int, int, int] = (64, 128, 256, 512)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        planes = (64, 64, 128, 256, 512)
        for i in range(4):
            stride = 1 if i == 0 else 2
            self.add_module(f'layer{i + 1}', nn.Sequential(BasicBlock(planes[i], planes[i + 1], stride),
                                                           BasicBlock(planes[i + 1], planes[i + 1])))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x: Tensor) -> List[Tensor]:
        """Args: x ``(B, 3, H, W)``, H and W multiples of 32. Returns the four stage outputs."""
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        feats = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return feats


class LightCore(nn.Module):
    """ResNet-18 + DPT fusion decoder of width ``width``: the MidasCore interface at a fraction of the cost.

    ``output_stride=1`` gives out_conv / rel_depth at the network resolution like MiDaS; ``2`` keeps them at
    half resolution (the metric head then runs at half resolution too, ~2x faster overall; ``infer()``
    resizes the metric depth back to the input size either way).
    """

    def __init__(self, width: int = 64, out_conv_channels: int = 32, output_stride: int = 1) -> None:
        super().__init__()
        if width < 2 or width % 2:
            raise ValueError(f'width must be an even number >= 2, got {width}')
        self.width = width
        self.out_conv_channels = out_conv_channels
        self.output_stride = output_stride
        self.encoder = ResNet18Features()
        self.decoder = DPTDecoder(ResNet18Features.channels, features=width,
                                  head_features_2=out_conv_channels, output_stride=output_stride)

    @property
    def output_channels(self) -> Tuple[int, ...]:
        return (self.out_conv_channels,) + (self.width,) * 5

    def forward(self, x: Tensor, intermediates: Optional[Dict[str, Tensor]] = None
                ) -> Tuple[Tensor, List[Tensor]]:
        """Args: x ``(B,3,H,W)`` normalised, H and W multiples of 32.

        Returns: rel_depth ``(B,H,W)`` and ``[out_conv, l4_rn, r4, r3, r2, r1]``.
        """
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-2] % 32 or x.shape[-1] % 32:
            raise ValueError(f'LightCore needs (B, 3, H, W) with H, W multiples of 32, got {tuple(x.shape)}')
        return self.decoder(self.encoder(x), intermediates)


def light_head_config(domain: str = 'N', width: int = 64, **overrides) -> ZoeDepthHeadConfig:
    """Released N / NK head maths with the core widths set to ``width`` and the hidden widths scaled down.

    ``overrides`` replace any field (e.g. ``n_bins``, ``bin_embedding_dim``).
    """
    key = str(domain).upper()
    if key not in ('N', 'NK'):
        raise ValueError(f"light model domain must be 'N' or 'NK', got {domain!r}")
    base = ZoeDepthHeadConfig.preset(key)
    small = dict(btlnck_channels=width, block_channels=(width,) * 4, bin_embedding_dim=64,
                 seed_mlp_dim=min(base.seed_mlp_dim, 2 * width), seed_projector_mlp_dim=64,
                 projector_mlp_dim=64, attractor_mlp_dim=64)
    small.update(overrides)
    return replace(base, **small)


def build_light_zoedepth(domain: str = 'N', width: int = 64, img_size: Tuple[int, int] = (384, 512),
                         keep_aspect_ratio: bool = True, output_stride: int = 1,
                         core_dtype: Optional[torch.dtype] = None, **head_overrides) -> ZoeDepth:
    """Light metric model with the :class:`ZoeDepth` API (``forward``, ``infer``, ``.metric_depth``).

    Args:
        domain: ``'N'`` (one head, uses rel_depth) or ``'NK'`` (two heads + router, per-image routing).
        width: decoder / head input width (256 in the released models).
        img_size: network size of the resize rule.
        output_stride: 1 (out_conv and metric depth at network resolution) or 2 (half; faster).
        core_dtype: e.g. ``torch.bfloat16``: ResNet + decoder weights in that dtype for fast CPU inference
            (the head stays float32); leave None for training.
        head_overrides: fields of :class:`ZoeDepthHeadConfig`.
    """
    core = LightCore(width, output_stride=output_stride)
    return ZoeDepth(core, light_head_config(domain, width, **head_overrides), img_size, keep_aspect_ratio,
                    core_dtype=core_dtype)


#: ``format`` value in the safetensors header of a light metric model.
LIGHT_FORMAT = 'dro_depth.metric_light'


def light_model_config(model: ZoeDepth) -> Dict[str, object]:
    """What :func:`load_light_zoedepth` needs to rebuild ``model`` (stored in the file header)."""
    core = model.core
    if not isinstance(core, LightCore):
        raise TypeError(f'not a light metric model (core is {type(core).__name__})')
    return {'format': LIGHT_FORMAT, 'variant': 'NK' if model.config.multi_head else 'N', 'width': core.width,
            'output_stride': core.output_stride, 'img_size': list(model.img_size),
            'keep_aspect_ratio': model.keep_aspect_ratio,
            # trained on whole, unpadded frames: infer() must not add the official reflect padding, which
            # shrinks the content and so changes the apparent field of view (and the metric depth)
            'pad_input': False}


def save_light_zoedepth(model: ZoeDepth, path: str | Path, metadata: Optional[Mapping[str, object]] = None,
                        half: bool = False) -> Path:
    """Write a light metric model as safetensors (config in the header), readable by
    :func:`load_light_zoedepth`.

    Args:
        half: store floating tensors as float16 (half the size; loading casts back).
    """
    from dro_depth.models.checkpoints import save_state_dict

    meta = {**light_model_config(model), **dict(metadata or {})}
    return save_state_dict(model.state_dict(), path, metadata=meta, half=half)


def load_light_zoedepth(path: str | Path, device: torch.device | str = 'cpu',
                        dtype: torch.dtype = torch.float32,
                        img_size: Optional[Tuple[int, int]] = None) -> Tuple[ZoeDepth, Dict[str, object]]:
    """Rebuild and strictly load a light metric model written by :func:`save_light_zoedepth`.

    Args:
        img_size: network size ``(h, w)`` of the resize rule (default: the one it was trained at).

    Returns:
        ``(model in eval mode, header metadata)``.

    Raises:
        FileNotFoundError: no such file. CheckpointError: not a light metric model, or keys/shapes differ.
    """
    from dro_depth.models.checkpoints import CheckpointError, check_state_dict, load_weights_file

    sd, meta = load_weights_file(Path(path))
    if meta.get('format') != LIGHT_FORMAT:
        raise CheckpointError(f'{path}: not a light metric model (header format {meta.get("format")!r}, '
                              f'expected {LIGHT_FORMAT!r}); released ZoeDepth files load with load_zoedepth')
    try:
        size = tuple(int(v) for v in (img_size or meta['img_size']))
        model = build_light_zoedepth(str(meta['variant']), width=int(meta['width']), img_size=size,
                                     keep_aspect_ratio=bool(meta.get('keep_aspect_ratio', True)),
                                     output_stride=int(meta['output_stride']))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f'{path}: light metric model header is incomplete or invalid ({exc})') from exc
    expected = model.state_dict()
    check_state_dict(expected, sd, source=str(path))
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in sd.items()}, strict=True)
    return model.to(device=device, dtype=dtype).eval(), meta
