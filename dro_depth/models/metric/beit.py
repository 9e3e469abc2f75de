"""BEiT ViT backbone (timm 0.6 ``beit_large_patch16_384`` layout), MiDaS relative-position bias at any size.

Key names follow timm 0.6.x, so ``core.core.pretrained.model.*`` of the released ZoeDepth checkpoints load
strictly (including the persistent ``relative_position_index`` buffer). For an input of ``H x W`` pixels the
window is ``(H/16, W/16)``: the stored ``(2*24-1)^2`` table rows are resized bilinearly
(``align_corners=False``) to ``(2h-1) x (2w-1)`` and the three cls rows are appended, as MiDaS does.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import BeitDPTConfig

logger = logging.getLogger(__name__)


def relative_position_index(window: Tuple[int, int], device: Optional[torch.device] = None) -> Tensor:
    """Relative-position index of a ``(h, w)`` patch window with a leading cls token.

    Args:
        window: ``(h, w)`` patches.
        device: where to build it (default: torch's current default device).

    Returns:
        ``(h*w+1, h*w+1)`` int64. Patch pair (query i, key j) -> ``(dy+h-1)*(2w-1) + (dx+w-1)`` with
        ``dy, dx`` = query minus key (row-major patches); cls query row -> ``n-3``, cls key column -> ``n-2``,
        cls-cls -> ``n-1`` where ``n = (2h-1)(2w-1)+3``.
    """
    h, w = int(window[0]), int(window[1])
    if h < 1 or w < 1:
        raise ValueError(f'window must be positive, got {window}')
    n = (2 * h - 1) * (2 * w - 1) + 3
    ys = torch.arange(h, device=device).repeat_interleave(w)
    xs = torch.arange(w, device=device).repeat(h)
    dy = ys[:, None] - ys[None, :] + (h - 1)
    dx = xs[:, None] - xs[None, :] + (w - 1)
    index = torch.empty((h * w + 1, h * w + 1), dtype=torch.int64, device=device)
    index[1:, 1:] = dy * (2 * w - 1) + dx
    index[0, :] = n - 3
    index[:, 0] = n - 2
    index[0, 0] = n - 1
    return index


def resize_relative_position_table(table: Tensor, pretrained_window: int, window: Tuple[int, int]) -> Tensor:
    """Resize a BEiT relative-position bias table to another window (MiDaS rule).

    Args:
        table: ``((2p-1)^2 + 3, heads)`` with ``p = pretrained_window``.
        pretrained_window: side ``p`` of the square window the table was trained for.
        window: target ``(h, w)``.

    Returns:
        ``((2h-1)(2w-1) + 3, heads)``: bilinear (``align_corners=False``) resize of the first ``(2p-1)^2``
        rows viewed as a ``(2p-1) x (2p-1)`` grid, flattened row-major, then the 3 cls rows unchanged.
    """
    side = 2 * pretrained_window - 1
    if table.ndim != 2 or table.shape[0] != side * side + 3:
        raise ValueError(f'table must be ({side * side + 3}, heads) for window {pretrained_window}, '
                         f'got {tuple(table.shape)}')
    h, w = window
    grid = table[: side * side].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    if (2 * h - 1, 2 * w - 1) != (side, side):
        grid = F.interpolate(grid, size=(2 * h - 1, 2 * w - 1), mode='bilinear', align_corners=False)
    flat = grid.permute(0, 2, 3, 1).reshape((2 * h - 1) * (2 * w - 1), -1)
    return torch.cat([flat, table[side * side:]], dim=0)


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch x patch`` convolution; ``(B,3,H,W) -> (B, H/p * W/p, C)`` row-major tokens."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """BEiT attention: qkv with (q, 0, v) bias, per-block relative-position bias resized to the window."""

    def __init__(self, dim: int, num_heads: int, pretrained_window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.pretrained_window = pretrained_window
        n_rel = (2 * pretrained_window - 1) ** 2 + 3
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.relative_position_bias_table = nn.Parameter(torch.zeros(n_rel, num_heads))
        # Persistent in timm 0.6.x checkpoints; the forward builds (and caches) the index of each window.
        self.register_buffer('relative_position_index',
                             relative_position_index((pretrained_window, pretrained_window)), persistent=True)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self._index_cache: Dict[Tuple[int, int, str], Tensor] = {}

    def _index(self, window: Tuple[int, int], device: torch.device) -> Tensor:
        key = (window[0], window[1], str(device))
        if key not in self._index_cache:
            self._index_cache[key] = relative_position_index(window, device=device)
        return self._index_cache[key]

    def interpolated_table(self, window: Tuple[int, int]) -> Tensor:
        """Bias table for ``window``: ``((2h-1)(2w-1)+3, heads)``."""
        table = self.relative_position_bias_table
        return resize_relative_position_table(table, self.pretrained_window, window)

    def relative_position_bias(self, window: Tuple[int, int]) -> Tensor:
        """``(1, heads, N, N)`` bias with ``N = h*w + 1``."""
        table = self.interpolated_table(window)
        n_tok = window[0] * window[1] + 1
        index = self._index(window, table.device).view(-1)
        bias = table[index].view(n_tok, n_tok, -1)
        return bias.permute(2, 0, 1).contiguous().unsqueeze(0)

    def forward(self, x: Tensor, window: Tuple[int, int]) -> Tensor:
        """Args: x ``(B, N, C)``; window ``(h, w)`` with ``N = h*w + 1``. Returns ``(B, N, C)``."""
        b, n, c = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        attn = attn + self.relative_position_bias(window)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, -1)
        return self.proj(x)


class Mlp(nn.Module):
    """fc1 -> exact GELU -> fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm block with layer scale: ``t += g1 * attn(LN1 t); t += g2 * mlp(LN2 t)``."""

    def __init__(self, cfg: BeitDPTConfig) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.gamma_1 = nn.Parameter(torch.full((dim,), cfg.layer_scale_init))
        self.gamma_2 = nn.Parameter(torch.full((dim,), cfg.layer_scale_init))
        self.norm1 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.attn = Attention(dim, cfg.num_heads, cfg.window)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))

    def forward(self, x: Tensor, window: Tuple[int, int]) -> Tensor:
        x = x + self.gamma_1 * self.attn(self.norm1(x), window)
        return x + self.gamma_2 * self.mlp(self.norm2(x))


class Beit(nn.Module):
    """BEiT encoder (no absolute position embedding). ``fc_norm`` and ``head`` exist for checkpoint
    compatibility only; the depth model never calls them."""

    def __init__(self, cfg: BeitDPTConfig = BeitDPTConfig()) -> None:
        super().__init__()
        self.config = cfg
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, cfg.embed_dim)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.fc_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes)

    def forward(self, x: Tensor, hooks: Sequence[int],
                intermediates: Optional[Dict[str, Tensor]] = None) -> List[Tensor]:
        """Run the blocks and return the raw outputs (residual stream, cls first) of the hooked blocks.

        Args:
            x: ``(B, 3, H, W)`` normalised image, H and W multiples of the patch size.
            hooks: block indices, returned in this order.
            intermediates: optional dict filled with ``patch_embed`` and ``block{i}`` tokens.

        Returns:
            list of ``(B, 1 + H*W/p^2, C)`` tensors.
        """
        p = self.config.patch_size
        if x.ndim != 4 or x.shape[1] != self.config.in_chans:
            raise ValueError(f'expected (B, {self.config.in_chans}, H, W) input, got {tuple(x.shape)}')
        if x.shape[-2] % p or x.shape[-1] % p:
            raise ValueError(f'input size {tuple(x.shape[-2:])} must be a multiple of the patch size {p}')
        window = (x.shape[-2] // p, x.shape[-1] // p)
        tokens = self.patch_embed(x)
        if intermediates is not None:
            intermediates['patch_embed'] = tokens
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        wanted = {int(h) for h in hooks}
        found: Dict[int, Tensor] = {}
        last = max(wanted)
        for i, block in enumerate(self.blocks):
            if i > last:
                break
            tokens = block(tokens, window)
            if intermediates is not None:
                intermediates[f'block{i}'] = tokens
            if i in wanted:
                found[i] = tokens
        return [found[int(h)] for h in hooks]
