"""Domain router of ZoeD_M12_NK: 1x1 patch embedding + transformer encoder; token 0 feeds a classifier."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .config import RouterConfig


def encoding_frequencies(dim: int, device: torch.device | None = None) -> Tensor:
    """The ``dim/2`` frequencies ``10000^(-2i/dim)`` of the sinusoidal encoding, float32 ``(dim/2,)``, computed
    as the release does (``exp`` in float32).

    float32 ``exp`` is accurate to one unit in the last place, not correctly rounded, so values that fall
    almost exactly between two float32 numbers can round either way on another CPU's math library (this is
    the only platform-dependent step of the router; see test/test_zoedepth_heads.py).
    """
    index = torch.arange(0, dim, 2, dtype=torch.float32, device=device)
    return torch.exp(index * torch.tensor(-math.log(10000.0) / dim, dtype=torch.float32, device=device))


def positional_encoding_1d(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Sinusoidal encoding ``(length, 1, dim)`` in float32 (as the release computes it).

    Dims ``0..dim/2-1`` are ``sin(pos * 10000^(-2i/dim))``, the rest the cosines of the same arguments.
    """
    position = torch.arange(0, length, dtype=torch.float32, device=device).unsqueeze(1)
    angle = position * encoding_frequencies(dim, device).unsqueeze(0)
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1).unsqueeze(1)


class PatchTransformerEncoder(nn.Module):
    """``(B, C, h, w)`` -> ``(1 + h*w, B, E)``: 1x1 conv tokens, a zero token prepended, + float32 sinusoidal
    encoding, post-norm ``nn.TransformerEncoder`` (sequence first; each image is processed independently)."""

    def __init__(self, in_channels: int, cfg: RouterConfig = RouterConfig()) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(cfg.embedding_dim, cfg.num_heads,
                                           dim_feedforward=cfg.dim_feedforward, dropout=cfg.dropout,
                                           activation='relu', layer_norm_eps=cfg.layer_norm_eps,
                                           batch_first=False, norm_first=False)
        self.transformer_encoder = nn.TransformerEncoder(layer, num_layers=cfg.num_layers,
                                                         enable_nested_tensor=False)
        self.embedding_convPxP = nn.Conv2d(in_channels, cfg.embedding_dim, kernel_size=1, stride=1)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.embedding_convPxP(x).flatten(2)
        tokens = nn.functional.pad(tokens, (1, 0))
        tokens = tokens.permute(2, 0, 1)
        pe = positional_encoding_1d(tokens.shape[0], tokens.shape[2], device=tokens.device)
        return self.transformer_encoder(tokens + pe.to(tokens.dtype))
