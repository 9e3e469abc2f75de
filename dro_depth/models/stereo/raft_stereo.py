"""RAFT-Stereo (Lipson et al. 2021, MIT), weight-compatible with the official and NeRF-Supervised releases.

Conventions (official): inputs RGB float 0..255, (B, 3, H, W), H and W multiples of 32 for
:meth:`RAFTStereo.forward`; the x "flow" from left to right is negative, disparity = -flow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dro_depth.errors import DroDepthError

from .config import NS_RELEASE, RaftStereoConfig
from .corr import CorrPyramid1D
from .extractor import ContextEncoder, FeatureEncoder, ResidualBlock
from .padding import InputPadder
from .update import MultiUpdateBlock

__all__ = ['RAFTStereo', 'StereoIteration', 'convex_upsample', 'StereoInputError']


class StereoInputError(DroDepthError):
    """Stereo network input of the wrong shape, dtype or size."""


@dataclass
class StereoIteration:
    """One refinement step: low-resolution flow (B, 2, H/f, W/f) and, when computed, the upsampled
    x flow (B, 1, H, W) (negative disparity)."""

    flow_low: torch.Tensor
    flow_up: torch.Tensor | None


def convex_upsample(flow: torch.Tensor, mask: torch.Tensor, factor: int) -> torch.Tensor:
    """Upsample flow by a convex combination of each pixel's 3x3 low-resolution neighbours.

    Args:
        flow: float (B, D, h, w) at feature resolution (scaled by ``factor`` inside).
        mask: float (B, 9*factor*factor, h, w) logits, channel layout (9, factor, factor).
        factor: upsampling factor.

    Returns:
        float (B, D, factor*h, factor*w).
    """
    b, d, h, w = flow.shape
    weights = torch.softmax(mask.view(b, 1, 9, factor, factor, h, w), dim=2)
    patches = F.unfold(factor * flow, [3, 3], padding=1).view(b, d, 9, 1, 1, h, w)
    up = torch.sum(weights * patches, dim=2)  # (B, D, f, f, h, w)
    return up.permute(0, 1, 4, 2, 5, 3).reshape(b, d, factor * h, factor * w)


def _coords_grid(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """float (B, 2, H, W) pixel coordinates, x first."""
    ys, xs = torch.meshgrid(torch.arange(height, device=like.device, dtype=like.dtype),
                            torch.arange(width, device=like.device, dtype=like.dtype), indexing='ij')
    return torch.stack([xs, ys])[None].repeat(batch, 1, 1, 1)


class RAFTStereo(nn.Module):
    """RAFT-Stereo network.

    Args:
        cfg: architecture (default: the NS release, ``raftstereo-NS.tar``).

    Example:
        >>> net = RAFTStereo().eval()
        >>> left = right = torch.rand(1, 3, 64, 96) * 255
        >>> net.disparity(left, right, iters=2).shape
        torch.Size([1, 1, 64, 96])
    """

    def __init__(self, cfg: RaftStereoConfig = NS_RELEASE) -> None:
        super().__init__()
        self.cfg = cfg
        hd = cfg.hidden_dims
        self.cnet = ContextEncoder(hd, norm=cfg.context_norm, downsample=cfg.n_downsample)
        self.update_block = MultiUpdateBlock(cfg)
        self.context_zqr_convs = nn.ModuleList(nn.Conv2d(hd[2 - i], hd[2 - i] * 3, 3, padding=1)
                                               for i in range(cfg.n_gru_layers))
        if cfg.shared_backbone:
            self.conv2 = nn.Sequential(ResidualBlock(128, 128, 'instance', stride=1),
                                       nn.Conv2d(128, 256, 3, padding=1))
        else:
            self.fnet = FeatureEncoder(output_dim=256, norm='instance', downsample=cfg.n_downsample)

    # ----------------------------------------------------------------- encoding
    def encode(self, left: torch.Tensor, right: torch.Tensor
               ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]], CorrPyramid1D]:
        """Hidden states, context biases and the correlation pyramid.

        Args:
            left, right: float (B, 3, H, W) RGB 0..255, H, W multiples of 32.

        Returns:
            ``(net, inp, corr)``: ``net[i]`` tanh hidden state (B, hidden, H/f/2**i, W/f/2**i);
            ``inp[i]`` = [cz, cr, cq]; ``corr`` the :class:`CorrPyramid1D`.
        """
        cfg = self.cfg
        image1 = (2 * (left / 255.0) - 1.0).contiguous()
        image2 = (2 * (right / 255.0) - 1.0).contiguous()
        if cfg.shared_backbone:
            levels, stem = self.cnet(torch.cat([image1, image2], dim=0), num_layers=cfg.n_gru_layers,
                                     dual_input=True)
            fmap1, fmap2 = self.conv2(stem).split(stem.shape[0] // 2, dim=0)
        else:
            levels, _ = self.cnet(image1, num_layers=cfg.n_gru_layers)
            fmap1, fmap2 = self.fnet(torch.cat([image1, image2], dim=0)).split(image1.shape[0], dim=0)
        net = [torch.tanh(lv[0]) for lv in levels]
        inp = [list(conv(torch.relu(lv[1])).split(conv.out_channels // 3, dim=1))
               for lv, conv in zip(levels, self.context_zqr_convs)]
        corr = CorrPyramid1D(fmap1, fmap2, levels=cfg.corr_levels, radius=cfg.corr_radius)
        return net, inp, corr

    # ----------------------------------------------------------------- refinement
    def _step(self, net: list[torch.Tensor], inp: list[list[torch.Tensor]], corr: torch.Tensor,
              flow: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """One GRU iteration (with the slow-fast extra coarse passes when configured)."""
        n = self.cfg.n_gru_layers
        ub = self.update_block
        if self.cfg.slow_fast_gru and n == 3:
            net = ub.update_hidden(net, inp, iter32=True, iter16=False, iter08=False)
        if self.cfg.slow_fast_gru and n >= 2:
            net = ub.update_hidden(net, inp, iter32=n == 3, iter16=True, iter08=False)
        net = ub.update_hidden(net, inp, corr, flow, iter32=n == 3, iter16=n >= 2)
        delta, mask = ub.heads(net[0])
        return net, delta, mask

    def iterate(self, left: torch.Tensor, right: torch.Tensor, iters: int = 12,
                flow_init: torch.Tensor | None = None, upsample: str = 'all') -> Iterator[StereoIteration]:
        """Yield every refinement step (the official loop, one step at a time).

        Args:
            left, right: float (B, 3, H, W) RGB 0..255, H, W multiples of 32.
            iters: number of GRU iterations.
            flow_init: optional float (B, 2, H/f, W/f) initial low-resolution flow.
            upsample: 'all' (every step, as in training) or 'last' (the final step only).
        """
        self._check_input(left, right, iters)
        net, inp, corr_fn = self.encode(left, right)
        coords0 = _coords_grid(left.shape[0], net[0].shape[2], net[0].shape[3], net[0])
        coords1 = coords0.clone()
        if flow_init is not None:
            coords1 = coords1 + flow_init
        for itr in range(iters):
            coords1 = coords1.detach()
            corr = corr_fn(coords1)
            net, delta, mask = self._step(net, inp, corr, coords1 - coords0)
            delta = torch.cat([delta[:, :1], torch.zeros_like(delta[:, 1:])], dim=1)  # epipolar: y = 0
            coords1 = coords1 + delta
            flow_low = coords1 - coords0
            flow_up = None
            if upsample == 'all' or itr == iters - 1:
                flow_up = convex_upsample(flow_low, mask, self.cfg.factor)[:, :1]
            yield StereoIteration(flow_low=flow_low, flow_up=flow_up)

    def forward(self, left: torch.Tensor, right: torch.Tensor, iters: int = 12,
                flow_init: torch.Tensor | None = None, test_mode: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor] | list[torch.Tensor]:
        """The official forward on padded inputs.

        Args:
            left, right: float (B, 3, H, W) RGB 0..255, H and W multiples of 32.
            iters: GRU iterations (12 is the official default; evaluation uses 32).
            flow_init: optional initial low-resolution flow (B, 2, H/f, W/f).
            test_mode: return only the final prediction.

        Returns:
            test_mode: ``(flow_low (B, 2, H/f, W/f), flow_up (B, 1, H, W))``, x flow negative for
            positive disparity; otherwise the list of ``flow_up`` of every iteration.
        """
        steps = list(self.iterate(left, right, iters, flow_init, 'last' if test_mode else 'all'))
        if test_mode:
            return steps[-1].flow_low, steps[-1].flow_up
        return [s.flow_up for s in steps]

    @torch.no_grad()
    def disparity(self, left: torch.Tensor, right: torch.Tensor, iters: int = 32) -> torch.Tensor:
        """Positive disparity of the left image for unpadded inputs (pad to 32 'sintel', run, unpad).

        Args:
            left, right: float (B, 3, H, W) RGB 0..255 rectified pair, any H, W.
            iters: GRU iterations (32, as the official evaluation).

        Returns:
            float (B, 1, H, W) disparity in pixels of the input resolution (left x - right x).
        """
        padder = InputPadder(left.shape, divis_by=32)
        lp, rp = padder.pad(left, right)
        _, flow_up = self.forward(lp, rp, iters=iters, test_mode=True)
        return -padder.unpad(flow_up)

    def _check_input(self, left: torch.Tensor, right: torch.Tensor, iters: int) -> None:
        if left.dim() != 4 or left.shape[1] != 3 or left.shape != right.shape:
            raise StereoInputError(f'left/right must both be (B, 3, H, W) of one shape, got '
                                   f'{tuple(left.shape)} and {tuple(right.shape)}')
        if left.shape[-2] % 32 or left.shape[-1] % 32:
            raise StereoInputError(f'forward() needs H and W multiples of 32, got {tuple(left.shape[-2:])}; '
                                   'pad with InputPadder or call disparity()')
        if not left.is_floating_point() or not right.is_floating_point():
            raise StereoInputError(f'images must be floating point RGB 0..255, got '
                                   f'{left.dtype}/{right.dtype}')
        if int(iters) < 1:
            raise StereoInputError(f'iters must be >= 1, got {iters}')
