"""DRO heads, separable ConvGRU and the depth / pose update blocks.

Module and parameter names match the official DepthPoseNet state dict. Besides the plain ``forward``
(the textbook formulation), the GRU and the encoders offer a faster but mathematically identical path
used inside the iteration loop:

* the GRU's context input is constant over all steps, so its convolution (plus the biases) is computed
  once per forward pass (:meth:`SepConvGRU.prepare`); each step then convolves only [h, encoder] for
  z/r and [r*h, encoder] for q;
* the pose encoder's 7x7 conv runs on a pose vector broadcast to every pixel; with zero padding that is
  a fixed linear function of the 6 numbers, so a basis [6,C,h,w] is computed once per forward pass
  (:meth:`PoseEncoder.pose_basis`) and each step is a [M,6] x [6,C*h*w] product.

Both only change floating-point summation order (differences at the level of machine epsilon).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['DepthHead', 'PoseHead', 'UpMaskNet', 'SepConvGRU', 'GRUPlan', 'DepthEncoder', 'PoseEncoder',
           'DepthUpdateBlock', 'PoseUpdateBlock']


def _scale_rotation(out: torch.Tensor) -> torch.Tensor:
    """[M,6] raw head output -> pose vector with the rotation part scaled by 0.01."""
    return torch.cat([out[:, :3], 0.01 * out[:, 3:]], dim=1)


class DepthHead(nn.Module):
    """3x3 conv -> ReLU -> 3x3 conv to one channel -> activation. [M,C,h,w] -> [M,1,h,w]."""

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, 1, 3, padding=1)

    def forward(self, x: torch.Tensor,
                activation: Callable[[torch.Tensor], torch.Tensor] = torch.tanh) -> torch.Tensor:
        return activation(self.conv2(F.relu(self.conv1(x))))


class PoseHead(nn.Module):
    """3x3 conv -> ReLU -> 3x3 conv to 6 channels -> mean over pixels; rotation part times 0.01.

    [M,C,h,w] -> pose vector [M,6] = [tx,ty,tz,rx,ry,rz].
    """

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.conv1_pose = nn.Conv2d(input_dim, hidden_dim, 3, padding=1)
        self.conv2_pose = nn.Conv2d(hidden_dim, 6, 3, padding=1)

    def _tail(self, y: torch.Tensor) -> torch.Tensor:
        return _scale_rotation(self.conv2_pose(F.relu(y)).mean(3).mean(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._tail(self.conv1_pose(x))

    def forward_pairs(self, f_tgt: torch.Tensor, f_ref: torch.Tensor) -> torch.Tensor:
        """Head on concatenated [target, reference] features, target part computed once.

        Args:
            f_tgt: [B,C,h,w] target features.
            f_ref: [N*B,C,h,w] reference features, rows in n-major order (row n*B + b).

        Returns:
            [N*B,6], equal to ``forward(cat([f_tgt repeated, f_ref], 1))``.
        """
        c = f_tgt.shape[1]
        w = self.conv1_pose.weight
        y_tgt = F.conv2d(f_tgt, w[:, :c], self.conv1_pose.bias, padding=1)
        y_ref = F.conv2d(f_ref, w[:, c:], None, padding=1)
        n = f_ref.shape[0] // f_tgt.shape[0]
        y = (y_ref.view(n, *y_tgt.shape) + y_tgt.unsqueeze(0)).view_as(y_ref)
        return self._tail(y)


def mask_head(hidden_dim: int, ratio: int) -> nn.Sequential:
    """Convex-upsampling mask logits: 3x3 conv C->2C, ReLU, 1x1 conv -> 9*ratio^2 (keys 0 and 2)."""
    return nn.Sequential(
        nn.Conv2d(hidden_dim, hidden_dim * 2, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden_dim * 2, ratio * ratio * 9, 1, padding=0))


class UpMaskNet(nn.Module):
    """Convex-upsampling mask: 3x3 conv C->2C, ReLU, 1x1 conv -> 9*ratio^2; times 0.25."""

    def __init__(self, hidden_dim: int = 128, ratio: int = 8) -> None:
        super().__init__()
        self.mask = mask_head(hidden_dim, ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[M,C,h,w] -> mask logits [M,9*ratio^2,h,w]."""
        return 0.25 * self.mask(x)


@dataclass
class GRUPlan:
    """Per-forward precomputation for :meth:`SepConvGRU.step` (one entry per GRU half)."""

    w_zr: tuple[torch.Tensor, torch.Tensor]      # [2*hd, hd+E, kh, kw] on cat[h, enc]
    w_q: tuple[torch.Tensor, torch.Tensor]       # [hd, hd+E, kh, kw] on cat[r*h, enc]
    ctx_zr: tuple[torch.Tensor, torch.Tensor]    # [M, 2*hd, h, w] context part + biases
    ctx_q: tuple[torch.Tensor, torch.Tensor]     # [M, hd, h, w]


class SepConvGRU(nn.Module):
    """Separable ConvGRU: a 1x5 (horizontal) then a 5x1 (vertical) GRU update.

    z, r = sigmoid, q = tanh(conv([r*h, x])), h = (1-z) h + z q. The input x is [context, encoder].

    Args:
        hidden_dim: hd, channels of h.
        input_dim: channels of x (context + encoder output).
    """

    def __init__(self, hidden_dim: int, input_dim: int) -> None:
        super().__init__()
        cin = hidden_dim + input_dim
        self.hidden_dim = hidden_dim
        self.convz1 = nn.Conv2d(cin, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(cin, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(cin, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(cin, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(cin, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(cin, hidden_dim, (5, 1), padding=(2, 0))

    def _halves(self) -> tuple[tuple[nn.Conv2d, nn.Conv2d, nn.Conv2d], ...]:
        return ((self.convz1, self.convr1, self.convq1), (self.convz2, self.convr2, self.convq2))

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Reference update. h [M,hd,h,w], x [M,input_dim,h,w] -> new h [M,hd,h,w]."""
        for convz, convr, convq in self._halves():
            hx = torch.cat([h, x], dim=1)
            z = torch.sigmoid(convz(hx))
            r = torch.sigmoid(convr(hx))
            q = torch.tanh(convq(torch.cat([r * h, x], dim=1)))
            h = (1 - z) * h + z * q
        return h

    def prepare(self, context: torch.Tensor) -> GRUPlan:
        """Precompute the constant context contribution. context [M,cdim,h,w]."""
        hd = self.hidden_dim
        c = context.shape[1]
        w_zr, w_q, ctx_zr, ctx_q = [], [], [], []
        for convz, convr, convq in self._halves():
            pad = convz.padding
            wzr = torch.cat([convz.weight, convr.weight], dim=0)
            w_zr.append(torch.cat([wzr[:, :hd], wzr[:, hd + c:]], dim=1).contiguous())
            w_q.append(torch.cat([convq.weight[:, :hd], convq.weight[:, hd + c:]], dim=1).contiguous())
            ctx_zr.append(F.conv2d(context, wzr[:, hd:hd + c], torch.cat([convz.bias, convr.bias]),
                                   padding=pad))
            ctx_q.append(F.conv2d(context, convq.weight[:, hd:hd + c], convq.bias, padding=pad))
        return GRUPlan(tuple(w_zr), tuple(w_q), tuple(ctx_zr), tuple(ctx_q))  # type: ignore[arg-type]

    def step(self, h: torch.Tensor, enc: torch.Tensor, plan: GRUPlan) -> torch.Tensor:
        """Fast update, equal to ``forward(h, cat([context, enc], 1))`` for the planned context.

        h [M,hd,h,w], enc [M,E,h,w] -> new h [M,hd,h,w].
        """
        hd = self.hidden_dim
        for i, (convz, _, _) in enumerate(self._halves()):
            pad = convz.padding
            zr = torch.sigmoid(F.conv2d(torch.cat([h, enc], dim=1), plan.w_zr[i], None, padding=pad)
                               + plan.ctx_zr[i])
            z, r = zr[:, :hd], zr[:, hd:]
            q = torch.tanh(F.conv2d(torch.cat([r * h, enc], dim=1), plan.w_q[i], None, padding=pad)
                           + plan.ctx_q[i])
            h = (1 - z) * h + z * q
        return h


class DepthEncoder(nn.Module):
    """Encodes (cost, inverse depth) into the GRU input.

    cost [M,cost_dim,h,w] -> 1x1 conv + ReLU -> 3x3 conv + ReLU; inverse depth [M,1,h,w] -> 7x7 conv +
    ReLU -> 3x3 conv to 64 + ReLU; concatenated (cost branch first) -> 3x3 conv to out_chs-1 + ReLU;
    the inverse depth is appended as the last channel. Output [M,out_chs,h,w].
    """

    def __init__(self, cost_dim: int, hidden_dim: int, out_chs: int) -> None:
        super().__init__()
        self.out_chs = out_chs
        self.convc1 = nn.Conv2d(cost_dim, hidden_dim, 1, padding=0)
        self.convc2 = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1)
        self.convd1 = nn.Conv2d(1, hidden_dim, 7, padding=3)
        self.convd2 = nn.Conv2d(hidden_dim, 64, 3, padding=1)
        self.convd = nn.Conv2d(64 + hidden_dim, out_chs - 1, 3, padding=1)

    def forward(self, inv_depth: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
        cor = F.relu(self.convc2(F.relu(self.convc1(cost))))
        dfm = F.relu(self.convd2(F.relu(self.convd1(inv_depth))))
        out = F.relu(self.convd(torch.cat([cor, dfm], dim=1)))
        return torch.cat([out, inv_depth], dim=1)


class PoseEncoder(nn.Module):
    """Encodes (cost, pose vector) into the GRU input.

    Like :class:`DepthEncoder` with the 6-vector broadcast to every pixel (7x7 conv on the broadcast
    map, zero padding); the output has out_chs-6 learned channels followed by the 6 broadcast values.
    """

    def __init__(self, cost_dim: int, hidden_dim: int, out_chs: int) -> None:
        super().__init__()
        self.out_chs = out_chs
        self.convc1 = nn.Conv2d(cost_dim, hidden_dim, 1, padding=0)
        self.convc2 = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1)
        self.convp1 = nn.Conv2d(6, hidden_dim, 7, padding=3)
        self.convp2 = nn.Conv2d(hidden_dim, 64, 3, padding=1)
        self.convp = nn.Conv2d(64 + hidden_dim, out_chs - 6, 3, padding=1)

    def pose_basis(self, height: int, width: int) -> torch.Tensor:
        """Response of ``convp1`` (without bias) to each unit pose channel broadcast over h x w.

        Returns [6, hidden_dim, h, w]; convp1(broadcast(p)) = bias + sum_i p_i * basis[i].
        """
        w = self.convp1.weight
        unit = torch.eye(6, dtype=w.dtype, device=w.device).view(6, 6, 1, 1).expand(6, 6, height, width)
        return F.conv2d(unit, w, None, padding=3)

    def forward(self, pose: torch.Tensor, cost: torch.Tensor,
                basis: torch.Tensor | None = None) -> torch.Tensor:
        """pose [M,6], cost [M,cost_dim,h,w] (optional ``basis`` from :meth:`pose_basis`)
        -> [M,out_chs,h,w]."""
        m, _, h, w = cost.shape
        pose_map = pose.view(m, 6, 1, 1).expand(m, 6, h, w)
        cor = F.relu(self.convc2(F.relu(self.convc1(cost))))
        if basis is None:
            pfm = self.convp1(pose_map)
        else:
            pfm = (pose @ basis.reshape(6, -1)).view(m, -1, h, w) + self.convp1.bias.view(1, -1, 1, 1)
        pfm = F.relu(self.convp2(F.relu(pfm)))
        out = F.relu(self.convp(torch.cat([cor, pfm], dim=1)))
        return torch.cat([out, pose_map], dim=1)


class DepthUpdateBlock(nn.Module):
    """Depth update: encoder -> separable ConvGRU -> tanh depth head (+ upsampling-mask net).

    Args:
        hidden_dim: GRU hidden size (128 for '-h' versions, else 64).
        cost_dim: feature / cost channels (128).
        context_dim: context channels (32).
        ratio: upsampling ratio of the mask (8).
    """

    def __init__(self, hidden_dim: int, cost_dim: int, context_dim: int, ratio: int = 8) -> None:
        super().__init__()
        self.encoder = DepthEncoder(cost_dim, hidden_dim, hidden_dim)
        self.depth_gru = SepConvGRU(hidden_dim, hidden_dim + context_dim)
        self.depth_head = DepthHead(hidden_dim, hidden_dim)
        self.mask = mask_head(hidden_dim, ratio)

    def upsample_mask(self, net: torch.Tensor) -> torch.Tensor:
        """Hidden state [M,hd,h,w] -> mask logits [M,9*ratio^2,h,w] (times 0.25)."""
        return 0.25 * self.mask(net)

    def step(self, net: torch.Tensor, inv_depth: torch.Tensor, cost: torch.Tensor,
             plan: GRUPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """One GRU step. net [B,hd,h,w], inv_depth [B,1,h,w], cost [B,cost_dim,h,w]
        -> (new net, delta inverse depth [B,1,h,w] in (-1, 1))."""
        net = self.depth_gru.step(net, self.encoder(inv_depth, cost), plan)
        return net, self.depth_head(net, torch.tanh)


class PoseUpdateBlock(nn.Module):
    """Pose update: encoder -> separable ConvGRU -> pose head (delta pose [M,6])."""

    def __init__(self, hidden_dim: int, cost_dim: int, context_dim: int) -> None:
        super().__init__()
        self.encoder = PoseEncoder(cost_dim, hidden_dim, hidden_dim)
        self.pose_gru = SepConvGRU(hidden_dim, hidden_dim + context_dim)
        self.pose_head = PoseHead(hidden_dim, hidden_dim)

    def step(self, net: torch.Tensor, pose: torch.Tensor, cost: torch.Tensor, plan: GRUPlan,
             basis: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One GRU step. net [M,hd,h,w], pose [M,6], cost [M,cost_dim,h,w] -> (new net, delta [M,6])."""
        net = self.pose_gru.step(net, self.encoder(pose, cost, basis), plan)
        return net, self.pose_head(net)
