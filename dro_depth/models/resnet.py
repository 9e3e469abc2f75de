"""ResNet-18 style feature encoder at stride 8, as used by DRO (four instances: fnet, cnet, cnet_depth,
cnet_pose).

Parameter names follow the torchvision ResNet layout (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer2.0.downsample.0`` / ``.1``, ...) so that released DRO checkpoints load strictly; ``layer4``,
``avgpool`` and ``fc`` do not exist. After ``layer3`` a small decoder brings the output back to 1/8
resolution: bilinear x2 upsampling of the layer3 output, ``upconv1`` (3x3 conv 256->128 + ReLU),
concatenation with the layer2 output, ``upconv1_fusion`` (3x3 conv 256->128 + ReLU) and ``out_conv``
(3x3 conv to the output width, no activation).

BatchNorm always uses its running statistics (:class:`FrozenBatchNorm2d`), in eval and in train mode,
which is how the official network is run; affine parameters stay trainable.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['FrozenBatchNorm2d', 'BasicBlock', 'ResNetEncoder']


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that always normalises with its running statistics.

    Same parameters and buffers as :class:`torch.nn.BatchNorm2d` (``weight``, ``bias``,
    ``running_mean``, ``running_var``, ``num_batches_tracked``), so state dicts are interchangeable.
    The running statistics are never updated, also in train mode; ``weight`` and ``bias`` keep
    receiving gradients.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` [B,C,H,W] with the stored statistics."""
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            False, 0.0, self.eps)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with BatchNorm and a (projected) shortcut.

    Args:
        in_planes: input channels.
        planes: output channels.
        stride: stride of the first conv and of the 1x1 projection shortcut.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = FrozenBatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = FrozenBatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                FrozenBatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B,in_planes,H,W] -> [B,planes,H/stride,W/stride]."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


def _make_layer(in_planes: int, planes: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1))


class ResNetEncoder(nn.Module):
    """ResNet-18 trunk (up to layer3) with a stride-8 decoder.

    Args:
        out_channels: width of the output feature map.
        num_input_images: number of RGB images concatenated along channels (input has
            ``3 * num_input_images`` channels).

    Input ``x`` [B, 3*num_input_images, H, W] with H, W divisible by 16; output
    [B, out_channels, H/8, W/8].
    """

    def __init__(self, out_channels: int, num_input_images: int = 1) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.conv1 = nn.Conv2d(3 * num_input_images, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = FrozenBatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _make_layer(64, 64, 1)
        self.layer2 = _make_layer(64, 128, 2)
        self.layer3 = _make_layer(128, 256, 2)
        self.upconv1 = nn.Sequential(nn.Conv2d(256, 128, 3, padding=1), nn.ReLU(inplace=True))
        self.upconv1_fusion = nn.Sequential(nn.Conv2d(256, 128, 3, padding=1), nn.ReLU(inplace=True))
        self.out_conv = nn.Conv2d(128, out_channels, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3*num_input_images, H, W] -> [B, out_channels, H/8, W/8]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        s8 = self.layer2(x)
        x = self.layer3(s8)
        x = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
        x = self.upconv1(x)
        x = self.upconv1_fusion(torch.cat([x, s8], dim=1))
        return self.out_conv(x)
