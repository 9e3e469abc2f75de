"""DINOv2 ViT/14 encoder as used by Depth Anything V2 (official parameter names under ``pretrained.``).

Pre-norm blocks with layer scale, exact GELU, qkv bias, LayerNorm eps 1e-6, no register tokens. The stored
37x37 position embedding is interpolated per input size exactly as the official code does (see
:func:`interpolate_pos_embed`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import DepthAnythingConfig

__all__ = ['DinoVisionTransformer', 'interpolate_pos_embed']


def interpolate_pos_embed(pos_embed: Tensor, height: int, width: int, patch_size: int = 14,
                          offset: float = 0.1) -> Tensor:
    """Position embedding for an image of ``height`` x ``width`` pixels, as the official DINOv2 code.

    Unchanged when the grid equals the stored one and the image is square; otherwise the patch part is
    cast to float32 and resized bicubically (no antialias) with ``scale_factor=((H//p + offset)/M,
    (W//p + offset)/M)``: the factor, not the output size, sets the sampling positions.

    Args:
        pos_embed: ``(1, 1 + M*M, C)`` stored embedding (class position first).
        height, width: image size in pixels (multiples of ``patch_size``).

    Returns:
        ``(1, 1 + (H//p)*(W//p), C)`` in the dtype of ``pos_embed``.
    """
    n_stored = pos_embed.shape[1] - 1
    gh, gw = height // patch_size, width // patch_size
    if gh * gw == n_stored and height == width:
        return pos_embed
    side = math.sqrt(n_stored)
    m = int(side)
    dim = pos_embed.shape[-1]
    pe = pos_embed.float()
    grid = pe[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=(float(gh + offset) / side, float(gw + offset) / side),
                         mode='bicubic', antialias=False)
    if grid.shape[-2:] != (gh, gw):
        raise RuntimeError(f'position embedding resized to {tuple(grid.shape[-2:])}, expected {(gh, gw)}')
    grid = grid.permute(0, 2, 3, 1).reshape(1, gh * gw, dim)
    return torch.cat((pe[:, :1], grid), dim=1).to(pos_embed.dtype)


class PatchEmbed(nn.Module):
    """Non-overlapping ``p`` x ``p`` patches -> tokens: ``(B, 3, H, W)`` -> ``(B, H/p * W/p, C)``."""

    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, N, C/heads)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class LayerScale(nn.Module):
    """Per-channel learned scale ``x * gamma``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """fc1 -> exact GELU -> fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with layer scale on both residual branches."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT/14 backbone returning the normed outputs of the hooked blocks."""

    def __init__(self, cfg: DepthAnythingConfig) -> None:
        super().__init__()
        c = cfg.embed_dim
        self.patch_size = cfg.patch_size
        self.offset = cfg.interpolate_offset
        self.patch_embed = PatchEmbed(cfg.patch_size, c)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg.grid ** 2, c))
        self.mask_token = nn.Parameter(torch.zeros(1, c))  # unused at inference; kept for the keys
        self.blocks = nn.ModuleList(Block(c, cfg.num_heads, cfg.mlp_ratio, cfg.layernorm_eps)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(c, eps=cfg.layernorm_eps)

    def tokens(self, x: Tensor) -> Tensor:
        """Patch tokens with the class token prepended and position embedding added: ``(B, 1+N, C)``."""
        b, _, h, w = x.shape
        t = self.patch_embed(x)
        t = torch.cat((self.cls_token.expand(b, -1, -1), t), dim=1)
        return t + interpolate_pos_embed(self.pos_embed, h, w, self.patch_size, self.offset)

    def get_intermediate_layers(self, x: Tensor, hooks: tuple[int, ...] | list[int]
                                ) -> list[tuple[Tensor, Tensor]]:
        """Normed outputs of the hooked blocks as ``(patch_tokens (B, N, C), cls_token (B, C))`` pairs.

        Args:
            x: ``float (B, 3, H, W)`` normalised image, H and W multiples of the patch size.
        """
        t = self.tokens(x)
        wanted = set(hooks)
        outs: list[tuple[Tensor, Tensor]] = []
        for i, block in enumerate(self.blocks):
            t = block(t)
            if i in wanted:
                normed = self.norm(t)
                outs.append((normed[:, 1:], normed[:, 0]))
            if i >= max(wanted):
                break
        return outs
