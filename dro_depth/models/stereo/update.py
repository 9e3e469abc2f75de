"""RAFT-Stereo multi-level ConvGRU update block; parameter names follow the official code."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import RaftStereoConfig

__all__ = ['MotionEncoder', 'ConvGRU', 'FlowHead', 'MultiUpdateBlock', 'pool2x', 'interp']


def pool2x(x: torch.Tensor) -> torch.Tensor:
    """Fine-to-coarse pooling: 3x3 average, stride 2, padding 1 (zeros counted)."""
    return F.avg_pool2d(x, 3, stride=2, padding=1)


def interp(x: torch.Tensor, dest: torch.Tensor) -> torch.Tensor:
    """Coarse-to-fine bilinear resize of ``x`` to the spatial size of ``dest`` (align_corners=True)."""
    return F.interpolate(x, dest.shape[2:], mode='bilinear', align_corners=True)


class MotionEncoder(nn.Module):
    """Correlation samples and the current flow -> 128 motion features (126 learned + the 2 flow channels)."""

    def __init__(self, corr_channels: int) -> None:
        super().__init__()
        self.convc1 = nn.Conv2d(corr_channels, 64, 1, padding=0)
        self.convc2 = nn.Conv2d(64, 64, 3, padding=1)
        self.convf1 = nn.Conv2d(2, 64, 7, padding=3)
        self.convf2 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv = nn.Conv2d(128, 126, 3, padding=1)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        """flow (B, 2, h, w), corr (B, L*(2r+1), h, w) -> (B, 128, h, w)."""
        cor = F.relu(self.convc2(F.relu(self.convc1(corr))))
        flo = F.relu(self.convf2(F.relu(self.convf1(flow))))
        out = F.relu(self.conv(torch.cat([cor, flo], dim=1)))
        return torch.cat([out, flow], dim=1)


class ConvGRU(nn.Module):
    """Convolutional GRU whose gates get an extra per-pixel context bias (cz, cr, cq)."""

    def __init__(self, hidden_dim: int, input_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.convz = nn.Conv2d(hidden_dim + input_dim, hidden_dim, kernel_size, padding=pad)
        self.convr = nn.Conv2d(hidden_dim + input_dim, hidden_dim, kernel_size, padding=pad)
        self.convq = nn.Conv2d(hidden_dim + input_dim, hidden_dim, kernel_size, padding=pad)

    def forward(self, h: torch.Tensor, cz: torch.Tensor, cr: torch.Tensor, cq: torch.Tensor,
                *inputs: torch.Tensor) -> torch.Tensor:
        """h (B, hidden, h, w); c* (B, hidden, h, w); inputs concatenated to (B, input_dim, h, w)."""
        x = torch.cat(inputs, dim=1)
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.convz(hx) + cz)
        r = torch.sigmoid(self.convr(hx) + cr)
        q = torch.tanh(self.convq(torch.cat([r * h, x], dim=1)) + cq)
        return (1 - z) * h + z * q


class FlowHead(nn.Module):
    """Two 3x3 convolutions: hidden state -> flow update (2 channels)."""

    def __init__(self, input_dim: int = 128, hidden_dim: int = 256, output_dim: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, output_dim, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_dim, h, w) -> (B, output_dim, h, w)."""
        return self.conv2(self.relu(self.conv1(x)))


class MultiUpdateBlock(nn.Module):
    """GRUs at 1/f (``gru08``), 1/2f (``gru16``) and 1/4f (``gru32``) exchanging hidden states, plus
    the flow head and the convex-upsampling mask head (logits scaled by 0.25)."""

    def __init__(self, cfg: RaftStereoConfig) -> None:
        super().__init__()
        h32, h16, h08 = cfg.hidden_dims
        self.n_layers = cfg.n_gru_layers
        self.encoder = MotionEncoder(cfg.corr_levels * (2 * cfg.corr_radius + 1))
        self.gru08 = ConvGRU(h08, 128 + h16 * (cfg.n_gru_layers > 1))
        self.gru16 = ConvGRU(h16, h32 * (cfg.n_gru_layers == 3) + h08)
        self.gru32 = ConvGRU(h32, h16)
        self.flow_head = FlowHead(h08, hidden_dim=256, output_dim=2)
        self.mask = nn.Sequential(nn.Conv2d(h08, 256, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(256, cfg.factor ** 2 * 9, 1, padding=0))

    def update_hidden(self, net: list[torch.Tensor], inp: list[list[torch.Tensor]],
                      corr: torch.Tensor | None = None, flow: torch.Tensor | None = None,
                      iter08: bool = True, iter16: bool = True, iter32: bool = True) -> list[torch.Tensor]:
        """One pass over the chosen GRU levels, coarse to fine. ``net`` is replaced level by level.

        Args:
            net: hidden states per level, finest first, (B, hidden, h/2**i, w/2**i).
            inp: context biases [cz, cr, cq] per level.
            corr: correlation samples (needed when ``iter08``). flow: current flow (B, 2, h, w).
        """
        net = list(net)
        if iter32:
            net[2] = self.gru32(net[2], *inp[2], pool2x(net[1]))
        if iter16:
            if self.n_layers > 2:
                net[1] = self.gru16(net[1], *inp[1], pool2x(net[0]), interp(net[2], net[1]))
            else:
                net[1] = self.gru16(net[1], *inp[1], pool2x(net[0]))
        if iter08:
            motion = self.encoder(flow, corr)
            if self.n_layers > 1:
                net[0] = self.gru08(net[0], *inp[0], motion, interp(net[1], net[0]))
            else:
                net[0] = self.gru08(net[0], *inp[0], motion)
        return net

    def heads(self, h08: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Finest hidden state -> (delta_flow (B, 2, h, w), mask logits x0.25 (B, 9*f*f, h, w))."""
        return self.flow_head(h08), 0.25 * self.mask(h08)
