"""DRO (Deep Recurrent Optimizer) depth-and-pose network, weight compatible with aliyun/dro-sfm.

Given a target image, N >= 1 reference images and pinhole intrinsics, the network predicts the
target's inverse depth and the N relative poses by alternating ConvGRU updates of depth and pose,
driven by a feature-metric cost at 1/8 resolution.

Public API::

    model = load_dro('dro.ckpt', device='cpu', dtype=torch.float32)   # eval mode
    out = model(target, refs, K, iterations=12)
    out.inv_depth        # [B,1,H,W]   final inverse depth
    out.poses            # [B,N,6]     [tx,ty,tz,rx,ry,rz], X_ref = R X_tgt + t, R = Rx Ry Rz
    save_dro(model, 'dro.safetensors', half=True)

Iteration schedule: ``iterations`` steps are grouped into stages of ``seq_len`` (4) steps, the last
stage taking the remainder. In each stage the depth GRU runs its steps with the poses frozen at the
stage start (P0), then each reference's pose GRU runs the same number of steps against the inverse
depth frozen at the stage start (D0). For multiples of 4 this is exactly the official schedule.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from dro_depth.errors import DroDepthError
from .checkpoints import (
    CheckpointError, check_state_dict, infer_hidden_dim, read_checkpoint, save_state_dict)
from .resnet import ResNetEncoder
from .update_blocks import (
    DepthHead, DepthUpdateBlock, PoseHead, PoseUpdateBlock, UpMaskNet)
from .upsample import convex_upsample
from .feature_warp import FeatureWarper, euler_to_rotation, inv_depth_to_depth

__all__ = ['DRONet', 'DROOutput', 'DROInputError', 'CheckpointError', 'build_dro', 'load_dro',
           'save_dro', 'stage_lengths', 'CONFIDENCE_REL_SCALE']

logger = logging.getLogger(__name__)

FEATURE_DIM = 128
CONTEXT_DIM = 32
RATIO = 8
#: relative last-step inverse-depth change giving confidence exp(-1) (see :class:`DROOutput`).
CONFIDENCE_REL_SCALE = 0.05


class DROInputError(DroDepthError):
    """Bad input to :class:`DRONet` (shape, size, dtype or intrinsics)."""


def stage_lengths(iterations: int, seq_len: int = 4) -> list[int]:
    """Split ``iterations`` GRU steps into stages of ``seq_len`` steps; the last takes the remainder.

    >>> stage_lengths(12), stage_lengths(7), stage_lengths(0)
    ([4, 4, 4], [4, 3], [])
    """
    full, rest = divmod(iterations, seq_len)
    return [seq_len] * full + ([rest] if rest else [])


@dataclass
class DROOutput:
    """Result of :meth:`DRONet.forward` (B batch, N references, h x w = H/8 x W/8).

    Attributes:
        inv_depth: final full-resolution inverse depth [B,1,H,W].
        poses: final pose vectors [B,N,6] = [tx,ty,tz,rx,ry,rz] (radians), X_ref = R X_tgt + t.
        poses_iters: iterations+1 pose tensors [B,N,6]: initial head, then after every pose step.
        inv_depth_lowres: final 1/8-resolution inverse depth [B,1,h,w].
        inv_depth_lowres_iters: iterations+1 tensors [B,1,h,w] (initial head first).
        confidence: [B,1,H,W] in [0,1], or None when iterations == 0. It is
            exp(-|d| / (CONFIDENCE_REL_SCALE * max(|inv|, 1e-6))) with d the change of the
            inverse depth in the last depth step and inv the final inverse depth (1/8 resolution),
            convex-upsampled with the final mask: 1 where the optimiser has settled, small where the
            last update still moved the depth by more than ~5 %. A cheap convergence proxy, not a
            calibrated probability.
        hidden: final depth GRU hidden state [B,hd,h,w] (None when iterations == 0).
        inv_depth_iters: (property, computed on first access) iterations+1 full-resolution inverse
            depths [B,1,H,W]: the initial head upsampled with the initial mask, then every depth step
            upsampled with the mask of that step. The last entry is ``inv_depth``.
    """

    inv_depth: torch.Tensor
    poses: torch.Tensor
    poses_iters: list[torch.Tensor]
    inv_depth_lowres: torch.Tensor
    inv_depth_lowres_iters: list[torch.Tensor]
    confidence: torch.Tensor | None = None
    hidden: torch.Tensor | None = None
    _iters_builder: Callable[[], list[torch.Tensor]] | None = field(default=None, repr=False)
    _inv_depth_iters: list[torch.Tensor] | None = field(default=None, repr=False)

    @property
    def inv_depth_iters(self) -> list[torch.Tensor]:
        if self._inv_depth_iters is None:
            if self._iters_builder is None:
                self._inv_depth_iters = [self.inv_depth]
            else:
                self._inv_depth_iters = self._iters_builder()
                self._iters_builder = None
        return self._inv_depth_iters


@dataclass
class _Recurrence:
    """The running state of DRO's alternating depth/pose updates inside one forward call (internal)."""

    inv: torch.Tensor                           # (B, 1, H/8, W/8) current inverse depth (unscaled)
    pose: torch.Tensor                          # (N*B, 6) current pose vectors
    inv_iters: list[torch.Tensor]
    pose_iters: list[torch.Tensor]
    hiddens: list[torch.Tensor] = field(default_factory=list)
    net_d: torch.Tensor | None = None           # depth GRU hidden state
    delta: torch.Tensor | None = None           # the last depth update


class _StageTimer:
    """Fills ``timings[name]`` with wall milliseconds; a no-op when ``timings`` is None."""

    def __init__(self, timings: MutableMapping[str, float] | None, device: torch.device) -> None:
        self.timings = timings
        self.sync = timings is not None and device.type == 'cuda'

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.timings is None:
            yield
            return
        if self.sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        yield
        if self.sync:
            torch.cuda.synchronize()
        self.timings[name] = (time.perf_counter() - t0) * 1000.0


def _grad_mode_restorer() -> Callable[[], contextlib.AbstractContextManager]:
    """Capture the current autograd mode so a lazy computation can run under the same one."""
    if torch.is_inference_mode_enabled():
        return torch.inference_mode
    enabled = torch.is_grad_enabled()
    return lambda: torch.set_grad_enabled(enabled)


class DRONet(nn.Module):
    """DRO DepthPoseNet (stride 8, feature dim 128, context dim 32).

    Submodule names equal the official ones, so released checkpoints load strictly. ``cnet`` is built
    (for strict loading) but unused, as in the official network. BatchNorm always uses running stats.

    Args:
        hidden_dim: GRU hidden size (128 for '-h' versions, 64 otherwise).
        seq_len: GRU steps per stage (4).
        iterations: default number of GRU steps when ``forward`` gets none (12).
        out_normalize: official 'out' versions: map every inverse depth x to
            1/max_depth + (1/min_depth - 1/max_depth) * x before warping and before returning.
        min_depth, max_depth: used only with ``out_normalize``.
    """

    def __init__(self, hidden_dim: int = 128, seq_len: int = 4, iterations: int = 12,
                 out_normalize: bool = False, min_depth: float = 0.1, max_depth: float = 100.0) -> None:
        super().__init__()
        if hidden_dim not in (64, 128):
            raise ValueError(f'hidden_dim must be 64 or 128, got {hidden_dim}')
        if seq_len < 1:
            raise ValueError(f'seq_len must be >= 1, got {seq_len}')
        self.hidden_dim = hidden_dim
        self.context_dim = CONTEXT_DIM
        self.seq_len = seq_len
        self.default_iterations = iterations
        self.out_normalize = out_normalize
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        fd = FEATURE_DIM
        self.fnet = ResNetEncoder(fd)
        self.depth_head = DepthHead(fd, fd)
        self.pose_head = PoseHead(fd * 2, fd)
        self.upmask_net = UpMaskNet(fd, RATIO)
        self.update_block_depth = DepthUpdateBlock(hidden_dim, fd, CONTEXT_DIM, RATIO)
        self.update_block_pose = PoseUpdateBlock(hidden_dim, fd, CONTEXT_DIM)
        self.cnet = ResNetEncoder(fd)  # unused by the official forward; kept for strict loading
        self.cnet_depth = ResNetEncoder(hidden_dim + CONTEXT_DIM)
        self.cnet_pose = ResNetEncoder(hidden_dim + CONTEXT_DIM, num_input_images=2)
        #: run the image encoders in channels-last layout on CPU for float32 (~20 % faster there;
        #: changes only the floating-point summation order)
        self.channels_last_encoders = True

    # ------------------------------------------------------------------ helpers
    @property
    def version(self) -> str:
        """Official-style version string, e.g. ``'it12-h'``."""
        v = f'it{self.default_iterations}'
        if self.hidden_dim == 128:
            v += '-h'
        if self.out_normalize:
            v += '-out'
        if self.seq_len != 4:
            v += f'-seq{self.seq_len}'
        return v

    def config(self) -> dict[str, Any]:
        """Settings needed to rebuild this network (stored by :func:`save_dro`)."""
        return {'version': self.version, 'hidden_dim': self.hidden_dim, 'seq_len': self.seq_len,
                'iterations': self.default_iterations, 'out_normalize': self.out_normalize,
                'min_depth': self.min_depth, 'max_depth': self.max_depth}

    def _encode(self, encoder: ResNetEncoder, x: torch.Tensor) -> torch.Tensor:
        """Run an image encoder, channels-last on CPU float32. [M,3k,H,W] -> [M,C,H/8,W/8]."""
        if self.channels_last_encoders and x.device.type == 'cpu' and x.dtype == torch.float32:
            return encoder(x.contiguous(memory_format=torch.channels_last)).contiguous()
        return encoder(x)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``fnet`` features of images [M,3,H,W] (RGB in [0,1]) -> [M,128,H/8,W/8], e.g. to cache the
        features of frames that later serve as references (``forward(..., ref_features=...)``)."""
        p = self.fnet.conv1.weight
        if not torch.is_tensor(images) or images.dim() != 4 or images.shape[1] != 3:
            raise DROInputError('images must be a tensor [M,3,H,W]')
        if images.shape[-2] % 16 or images.shape[-1] % 16:
            raise DROInputError('image height and width must be multiples of 16, '
                                f'got {tuple(images.shape[-2:])}')
        return self._encode(self.fnet, images.to(device=p.device, dtype=p.dtype))

    def _scale(self, inv_depth: torch.Tensor) -> torch.Tensor:
        if not self.out_normalize:
            return inv_depth
        lo = 1.0 / self.max_depth
        return lo + (1.0 / self.min_depth - lo) * inv_depth

    def _check_inputs(self, target: torch.Tensor, refs: torch.Tensor | Sequence[torch.Tensor],
                      K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.fnet.conv1.weight
        if not torch.is_tensor(target) or target.dim() != 4 or target.shape[1] != 3:
            got = tuple(target.shape) if torch.is_tensor(target) else type(target).__name__
            raise DROInputError(f'target must be a tensor [B,3,H,W], got {got}')
        if not target.is_floating_point():
            raise DROInputError(f'target must be a floating tensor (RGB in [0,1]), got {target.dtype}')
        b, _, h, w = target.shape
        if b < 1 or h % 16 or w % 16 or h < 16 or w < 16:
            raise DROInputError(f'image height and width must be positive multiples of 16, got {h}x{w} '
                                f'(batch {b}); resize or crop and scale K accordingly')
        if isinstance(refs, (list, tuple)):
            if len(refs) == 0:
                raise DROInputError('need at least one reference image')
            for i, r in enumerate(refs):
                if not torch.is_tensor(r) or tuple(r.shape) != tuple(target.shape):
                    raise DROInputError(f'reference {i} must have the target shape {tuple(target.shape)}, '
                                        f'got {tuple(r.shape) if torch.is_tensor(r) else type(r).__name__}')
            refs = torch.stack(list(refs), dim=1)
        elif not torch.is_tensor(refs):
            raise DROInputError(f'refs must be a tensor [B,N,3,H,W] or a list of [B,3,H,W], '
                                f'got {type(refs).__name__}')
        if refs.dim() != 5 or refs.shape[0] != b or tuple(refs.shape[2:]) != (3, h, w) or refs.shape[1] < 1:
            raise DROInputError(f'refs must be [B,N,3,H,W] = [{b},N>=1,3,{h},{w}] (or a list of N '
                                f'[B,3,H,W]), got {tuple(refs.shape)}')
        if not refs.is_floating_point():
            raise DROInputError(f'refs must be a floating tensor, got {refs.dtype}')
        if not torch.is_tensor(K):
            raise DROInputError(f'K must be a tensor [B,3,3] or [3,3], got {type(K).__name__}')
        if K.dim() == 2:
            K = K.unsqueeze(0)
        if K.dim() != 3 or tuple(K.shape[1:]) != (3, 3) or K.shape[0] not in (1, b):
            raise DROInputError(f'K must be [B,3,3] (B={b}) or [3,3], got {tuple(K.shape)}')
        K = K.to(device=p.device, dtype=p.dtype).expand(b, 3, 3)
        focal = torch.stack([K[:, 0, 0], K[:, 1, 1]])
        if not bool(torch.isfinite(K).all()) or bool((focal <= 0).any()):
            raise DROInputError('K must be finite with positive focal lengths fx = K[0,0], fy = K[1,1] '
                                '(pixel units at the input resolution)')
        return target.to(device=p.device, dtype=p.dtype), refs.to(device=p.device, dtype=p.dtype), K

    # ------------------------------------------------------------------ forward
    def forward(self, target: torch.Tensor, refs: torch.Tensor | Sequence[torch.Tensor], K: torch.Tensor,
                iterations: int | None = None,
                timings: MutableMapping[str, float] | None = None,
                ref_features: torch.Tensor | None = None) -> DROOutput:
        """Estimate the target's inverse depth and the reference poses.

        Args:
            target: float32 (B, 3, H, W) RGB in [0, 1], H and W multiples of 16.
            refs: (B, N, 3, H, W) (N >= 1) or a list of N tensors (B, 3, H, W).
            K: (B, 3, 3) or (3, 3) pixel intrinsics at H x W (shared by target and references).
            iterations: GRU steps (any int >= 0); default ``self.default_iterations``.
            timings: optional dict filled with per-stage wall times in ms: 'features', 'init',
                'context', 'gru_stage_0', ..., 'upsample' (CUDA is synchronised only then).
            ref_features: optional cached ``fnet`` features of the references (B, N, 128, H/8, W/8)
                (from :meth:`features` of earlier frames); then only the target is encoded here.

        Returns:
            :class:`DROOutput`.
        """
        iterations = self._check_iterations(iterations)
        target, refs, K = self._check_inputs(target, refs, K)
        timer = _StageTimer(timings, target.device)
        b, n = refs.shape[:2]
        refs_nm = refs.transpose(0, 1).reshape(n * b, 3, *target.shape[-2:])  # rows n*B + b
        with timer('features'):
            f_tgt, f_ref = self._pair_features(target, refs_nm, b, n, ref_features)
        with timer('init'):
            inv = self.depth_head(f_tgt, torch.sigmoid)
            pose = self.pose_head.forward_pairs(f_tgt, f_ref)  # (N*B, 6)
        state = _Recurrence(inv=inv, pose=pose, inv_iters=[inv], pose_iters=[pose])
        stages = stage_lengths(iterations, self.seq_len)
        if stages:
            self._recur(state, stages, target, refs_nm, K, f_tgt, f_ref, timer)
        with timer('upsample'):
            inv_up, confidence = self._upsample(state, f_tgt)
        return self._output(state, f_tgt, inv_up, confidence, b, n)

    # ---------------------------------------------------------------------- the stages of forward()
    def _check_iterations(self, iterations: Any) -> int:
        if iterations is None:
            return int(self.default_iterations)
        if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or iterations < 0:
            raise DROInputError(f'iterations must be an int >= 0, got {iterations!r}')
        return int(iterations)

    def _pair_features(self, target: torch.Tensor, refs_nm: torch.Tensor, b: int, n: int,
                       ref_features: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``fnet`` features of the target (B, 128, H/8, W/8) and the references (N*B, 128, H/8, W/8)."""
        if ref_features is None:
            fmaps = self._encode(self.fnet, torch.cat([target, refs_nm], dim=0))
            return fmaps[:b], fmaps[b:]
        height, width = target.shape[-2:]
        expected = (b, n, FEATURE_DIM, height // RATIO, width // RATIO)
        if not torch.is_tensor(ref_features) or tuple(ref_features.shape) != expected:
            got = tuple(ref_features.shape) if torch.is_tensor(ref_features) else type(ref_features)
            raise DROInputError(f'ref_features must be [B,N,C,h,w] = {list(expected)}, got {got}')
        f_tgt = self._encode(self.fnet, target)
        return f_tgt, ref_features.to(f_tgt).transpose(0, 1).reshape(n * b, *expected[2:])

    def _recur(self, state: _Recurrence, stages: list[int], target: torch.Tensor, refs_nm: torch.Tensor,
               K: torch.Tensor, f_tgt: torch.Tensor, f_ref: torch.Tensor, timer: _StageTimer) -> None:
        """Alternate depth and pose GRU steps over ``stages``, appending every iterate to ``state``."""
        hd = self.hidden_dim
        b, (c, h, w) = f_tgt.shape[0], f_tgt.shape[1:]
        n = f_ref.shape[0] // b
        with timer('context'):
            cd = self._encode(self.cnet_depth, target)
            state.net_d, ctx_d = torch.tanh(cd[:, :hd]), torch.relu(cd[:, hd:])
            cp = self._encode(self.cnet_pose, torch.cat([target.repeat(n, 1, 1, 1), refs_nm], dim=1))
            net_p, ctx_p = torch.tanh(cp[:, :hd]), torch.relu(cp[:, hd:])
            plan_d = self.update_block_depth.depth_gru.prepare(ctx_d)
            plan_p = self.update_block_pose.pose_gru.prepare(ctx_p)
            basis = self.update_block_pose.encoder.pose_basis(h, w)
            warper = FeatureWarper(K, n, h, w, 1.0 / RATIO)
            f_tgt_rep = f_tgt.repeat(n, 1, 1, 1)
        for s, length in enumerate(stages):
            with timer(f'gru_stage_{s}'):
                inv0, pose0 = state.inv.detach(), state.pose.detach()
                rot0 = euler_to_rotation(pose0[:, 3:])
                # depth steps: poses frozen at P0
                for _ in range(length):
                    depth = inv_depth_to_depth(self._scale(state.inv)).repeat(n, 1, 1, 1)
                    warped = warper.warp(f_ref, warper.points(depth), rot0, pose0[:, :3])
                    cost = ((f_tgt_rep - warped) ** 2).view(n, b, c, h, w).mean(dim=0)
                    state.net_d, state.delta = self.update_block_depth.step(state.net_d, state.inv, cost, plan_d)
                    state.inv = state.inv + state.delta
                    state.inv_iters.append(state.inv)
                    state.hiddens.append(state.net_d)
                # pose steps: inverse depth frozen at D0, one GRU state per reference (batched)
                points0 = warper.points(inv_depth_to_depth(self._scale(inv0)).repeat(n, 1, 1, 1))
                pose = pose0
                for _ in range(length):
                    warped = warper.warp(f_ref, points0, euler_to_rotation(pose[:, 3:]), pose[:, :3])
                    net_p, dpose = self.update_block_pose.step(net_p, pose, (f_tgt_rep - warped) ** 2, plan_p,
                                                               basis)
                    pose = pose + dpose
                    state.pose_iters.append(pose)
                state.pose = pose

    def _upsample(self, state: _Recurrence, f_tgt: torch.Tensor) -> tuple:
        """Full-resolution inverse depth and the confidence of the last update (None without one)."""
        if state.net_d is None:
            final_mask = self.upmask_net(f_tgt)
        else:
            final_mask = self.update_block_depth.upsample_mask(state.net_d)
        inv_up = self._scale(convex_upsample(state.inv, final_mask, RATIO))
        confidence = None
        if state.delta is not None:
            cur = self._scale(state.inv)
            change = (cur - self._scale(state.inv - state.delta)).abs()
            conf_low = torch.exp(-change / (CONFIDENCE_REL_SCALE * cur.abs().clamp(min=1e-6)))
            confidence = convex_upsample(conf_low, final_mask, RATIO)
        return inv_up, confidence

    def _output(self, state: _Recurrence, f_tgt: torch.Tensor, inv_up: torch.Tensor,
                confidence: torch.Tensor | None, b: int, n: int) -> DROOutput:
        """Pack the result; the full-resolution iterates are upsampled only when asked for."""
        def to_bn6(p: torch.Tensor) -> torch.Tensor:
            return p.view(n, b, 6).transpose(0, 1).contiguous()

        restore = _grad_mode_restorer()
        hiddens, inv_iters = state.hiddens, state.inv_iters

        def build_iters() -> list[torch.Tensor]:
            with restore():
                if not hiddens:
                    return [inv_up]
                masks = [self.upmask_net(f_tgt)]
                if len(hiddens) > 1:
                    masks += list(self.update_block_depth.upsample_mask(torch.cat(hiddens[:-1])).split(b))
                ups = convex_upsample(torch.cat(inv_iters[:-1]), torch.cat(masks), RATIO)
                return list(self._scale(ups).split(b)) + [inv_up]

        return DROOutput(
            inv_depth=inv_up,
            poses=to_bn6(state.pose),
            poses_iters=[to_bn6(p) for p in state.pose_iters],
            inv_depth_lowres=self._scale(state.inv),
            inv_depth_lowres_iters=[self._scale(x) for x in inv_iters],
            confidence=confidence,
            hidden=state.net_d,
            _iters_builder=build_iters,
        )


# ---------------------------------------------------------------------- construction and I/O
def build_dro(hidden_dim: int = 128, *, seq_len: int = 4, iterations: int = 12, out_normalize: bool = False,
              min_depth: float = 0.1, max_depth: float = 100.0, device: str | torch.device = 'cpu',
              dtype: torch.dtype = torch.float32, seed: int | None = None) -> DRONet:
    """Randomly initialised :class:`DRONet` (train mode) on ``device`` in ``dtype``.

    ``seed`` makes the initialisation reproducible without touching the global RNG.
    """
    if seed is None:
        model = DRONet(hidden_dim, seq_len, iterations, out_normalize, min_depth, max_depth)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DRONet(hidden_dim, seq_len, iterations, out_normalize, min_depth, max_depth)
    return model.to(device=device, dtype=dtype)


def load_dro(source: str | Path | Mapping[str, Any] | None = None, device: str | torch.device = 'cpu',
             dtype: torch.dtype = torch.float32, *, iterations: int | None = None) -> DRONet:
    """Load DRO weights into a :class:`DRONet` in eval mode.

    Args:
        source: released ``.ckpt``/``.pt`` (dict with ``state_dict``, keys prefixed
            ``model.depth_net.`` or ``depth_net.``), a plain state dict (prefixed or not), a
            ``.safetensors`` file from :func:`save_dro`, or None for random weights (with a warning).
        device, dtype: where and in which precision to run (stored float16 weights are upcast).
        iterations: default GRU steps (else taken from the checkpoint's version, else 12).

    Raises:
        CheckpointError (a ValueError): not a DRO checkpoint; the message names missing / unexpected
            keys and shape mismatches. FileNotFoundError: missing file.
    """
    if source is None:
        logger.warning('load_dro(None): DRO with random weights')
        model = build_dro(iterations=12 if iterations is None else iterations, device=device, dtype=dtype)
        return model.eval()
    ckpt = read_checkpoint(source)
    hidden = infer_hidden_dim(ckpt.state_dict)
    cfg = ckpt.config
    if 'hidden_dim' in cfg and int(cfg['hidden_dim']) != hidden:
        logger.warning('%s: config says hidden size %s but tensors have %d; using %d',
                       ckpt.source, cfg['hidden_dim'], hidden, hidden)
    model = DRONet(hidden_dim=hidden, seq_len=int(cfg.get('seq_len', 4)),
                   iterations=int(iterations if iterations is not None else cfg.get('iterations', 12)),
                   out_normalize=bool(cfg.get('out_normalize', False)),
                   min_depth=float(cfg.get('min_depth', 0.1)), max_depth=float(cfg.get('max_depth', 100.0)))
    model = model.to(device=device, dtype=dtype)
    check_state_dict(model.state_dict(), ckpt.state_dict, ckpt.source)
    model.load_state_dict(ckpt.state_dict, strict=True)
    return model.eval()


def save_dro(model: DRONet, path: str | Path, metadata: Mapping[str, Any] | None = None,
             half: bool = False) -> Path:
    """Write the weights of ``model`` as safetensors, readable by :func:`load_dro`.

    Args:
        model: the network (any device / dtype).
        path: output file (``.safetensors`` appended if missing).
        metadata: extra JSON-serialisable values stored in the header (merged over the model config).
        half: store floating tensors as float16 (default model: about 38 MB instead of 76 MB).
    """
    if not isinstance(model, DRONet):
        raise TypeError(f'save_dro expects a DRONet, got {type(model).__name__}')
    meta = {'format': 'dro_depth.dro', **model.config(), **dict(metadata or {})}
    return save_state_dict(model.state_dict(), path, metadata=meta, half=half)
