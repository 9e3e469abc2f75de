"""RAFT-Stereo feature and context encoders (residual CNNs); parameter names follow the official code."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ['ResidualBlock', 'FeatureEncoder', 'ContextEncoder', 'make_norm']


def make_norm(kind: str, planes: int) -> nn.Module:
    """Normalisation layer by name: 'batch', 'instance' (no affine), 'group' (planes/8 groups), 'none'."""
    if kind == 'batch':
        return nn.BatchNorm2d(planes)
    if kind == 'instance':
        return nn.InstanceNorm2d(planes)
    if kind == 'group':
        return nn.GroupNorm(num_groups=planes // 8, num_channels=planes)
    if kind == 'none':
        return nn.Identity()
    raise ValueError(f'unknown normalisation {kind!r} (expected batch, instance, group or none)')


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with normalisation and ReLU, plus a (1x1, strided) shortcut.

    The shortcut's normalisation is registered both as ``norm3`` and as ``downsample.1`` (one module),
    as in the official checkpoints.
    """

    def __init__(self, in_planes: int, planes: int, norm: str, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.norm1 = make_norm(norm, planes)
        self.norm2 = make_norm(norm, planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.norm3 = make_norm(norm, planes)
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride),
                                            self.norm3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, planes, H/stride, W/stride)."""
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


def _stage(in_planes: int, planes: int, norm: str, stride: int) -> nn.Sequential:
    return nn.Sequential(ResidualBlock(in_planes, planes, norm, stride),
                         ResidualBlock(planes, planes, norm, 1))


class _Stem(nn.Module):
    """7x7 convolution + three residual stages to 1/2**downsample resolution, 128 channels."""

    def _build_stem(self, norm: str, downsample: int) -> None:
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=1 + (downsample > 2), padding=3)
        self.relu1 = nn.ReLU(inplace=True)
        self.layer1 = _stage(64, 64, norm, 1)
        self.layer2 = _stage(64, 96, norm, 1 + (downsample > 1))
        self.layer3 = _stage(96, 128, norm, 1 + (downsample > 0))

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, 128, H/2**d, W/2**d)."""
        x = self.relu1(self.norm1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))


class FeatureEncoder(_Stem):
    """Matching-feature encoder (``fnet``, official ``BasicEncoder``): instance norm, 256 channels."""

    def __init__(self, output_dim: int = 256, norm: str = 'instance', downsample: int = 2) -> None:
        super().__init__()
        self.norm1 = make_norm(norm, 64)
        self._build_stem(norm, downsample)
        self.conv2 = nn.Conv2d(128, output_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, output_dim, H/2**d, W/2**d); images are normalised independently."""
        return self.conv2(self.stem(x))


class ContextEncoder(_Stem):
    """Context encoder (``cnet``, official ``MultiBasicEncoder``): two heads (hidden state, context) at
    1/2**d, 1/2**(d+1) and 1/2**(d+2) of the input.

    Args:
        hidden_dims: channels per GRU level, coarsest first (official ``hidden_dims``).
        norm: normalisation ('batch' in the NS release).
        downsample: ``n_downsample``.
        heads: output heads per level (2: hidden state and context).
    """

    def __init__(self, hidden_dims: tuple[int, int, int], norm: str = 'batch', downsample: int = 2,
                 heads: int = 2) -> None:
        super().__init__()
        self.norm1 = make_norm(norm, 64)
        self._build_stem(norm, downsample)
        self.layer4 = _stage(128, 128, norm, 2)
        self.layer5 = _stage(128, 128, norm, 2)
        self.outputs08 = nn.ModuleList(
            nn.Sequential(ResidualBlock(128, 128, norm, 1), nn.Conv2d(128, hidden_dims[2], 3, padding=1))
            for _ in range(heads))
        self.outputs16 = nn.ModuleList(
            nn.Sequential(ResidualBlock(128, 128, norm, 1), nn.Conv2d(128, hidden_dims[1], 3, padding=1))
            for _ in range(heads))
        self.outputs32 = nn.ModuleList(nn.Conv2d(128, hidden_dims[0], 3, padding=1) for _ in range(heads))

    def forward(self, x: torch.Tensor, num_layers: int = 3, dual_input: bool = False
                ) -> tuple[list[list[torch.Tensor]], torch.Tensor | None]:
        """Context features per GRU level, finest first.

        Args:
            x: float (N, 3, H, W) in [-1, 1]; with ``dual_input`` N = 2B (left images first).
            num_layers: GRU levels to produce (1..3).
            dual_input: the realtime shared backbone: heads see the first half only, and the stem output
                of all images is returned as well.

        Returns:
            ``(levels, stem)``: ``levels[i]`` = [hidden pre-tanh, context pre-relu], each
            (B, hidden_dims[2 - i], H/2**(d+i), W/2**(d+i)); ``stem`` (N, 128, ...) or None.
        """
        x = self.stem(x)
        stem = x if dual_input else None
        if dual_input:
            x = x[:x.shape[0] // 2]
        levels = [[f(x) for f in self.outputs08]]
        if num_layers >= 2:
            x = self.layer4(x)
            levels.append([f(x) for f in self.outputs16])
        if num_layers >= 3:
            x = self.layer5(x)
            levels.append([f(x) for f in self.outputs32])
        return levels, stem
