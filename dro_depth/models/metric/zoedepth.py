"""Full ZoeDepth model (core + metric head), official pre-processing and ``infer()``, and checkpoint loading.

``load_zoedepth('ZoeD_M12_NK.pt')`` builds the MiDaS BEiT-L/16-384 core plus the N, K or NK head that the file
holds (inferred from keys and shapes) and loads it strictly. The model is built on the meta device first, so
the 345 M parameters are allocated once, by the checkpoint itself.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import (CheckpointMismatchError, StateSource,
                         core_config_from_state_dict, head_config_from_state_dict,
                         read_state_dict, reconcile_state_dict, split_core_head)
from .config import BeitDPTConfig, ZoeDepthHeadConfig
from .dpt import MidasCore
from .head import DomainSpec, MetricDepthOutput, ZoeDepthHead
from .preprocess import (check_images, crop_padding, pad_amounts, pad_reflect,
                         prepare_for_midas)

logger = logging.getLogger(__name__)

#: Network size of the official infer configs: N and NK 384x512, K 384x768.
DEFAULT_IMG_SIZE = {'N': (384, 512), 'K': (384, 768), 'NK': (384, 512)}


def variant_of(cfg: ZoeDepthHeadConfig) -> str:
    """``'NK'`` for a routed head, ``'K'`` for normed bins, else ``'N'``."""
    if cfg.multi_head:
        return 'NK'
    return 'K' if cfg.bin_centers_type == 'normed' else 'N'


def _param_dtype(module: nn.Module, default: torch.dtype) -> torch.dtype:
    """Floating dtype of the first floating parameter of ``module`` (``default`` if it has none)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return default


class ZoeDepth(ZoeDepthHead):
    """Metric depth model: ``core`` (rel_depth and ``[out_conv, l4_rn, r4, r3, r2, r1]``) + metric head.

    The head's modules sit at the top level next to ``core`` so the state dict keys equal the releases'.
    Any core with that interface works (MiDaS BEiT here, a light ResNet in :mod:`.light`).

    Args:
        core: feature extractor taking the normalised network input ``(B, 3, h, w)``.
        head_config: metric head configuration; its widths must match the core's outputs.
        img_size: network size ``(h, w)`` of the resize rule.
        keep_aspect_ratio: official ``infer`` behaviour (True); the ``eval`` configs use False.
        core_dtype: cast the core to this dtype (e.g. ``torch.bfloat16`` for fast inference on CPUs with AMX,
            not for training). The forward always feeds the core in its parameters' dtype and the head in
            its own, so ``model.core.to(dtype)`` works at any time too.
    """

    def __init__(self, core: nn.Module, head_config: ZoeDepthHeadConfig = ZoeDepthHeadConfig(),
                 img_size: Tuple[int, int] = (384, 512), keep_aspect_ratio: bool = True,
                 core_dtype: Optional[torch.dtype] = None) -> None:
        nn.Module.__init__(self)
        self.core = core
        channels = getattr(core, 'output_channels', None)
        expected = (head_config.out_conv_channels, head_config.btlnck_channels, *head_config.block_channels)
        if channels is not None and tuple(channels) != expected:
            raise ValueError(f'core outputs {tuple(channels)} channels but the head expects {expected}')
        self._build_head(head_config)
        if len(img_size) != 2 or min(img_size) < 32:
            raise ValueError(f'img_size must be (h, w) >= 32, got {img_size}')
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.keep_aspect_ratio = bool(keep_aspect_ratio)
        if core_dtype is not None:
            self.core.to(core_dtype)

    @property
    def variant(self) -> str:
        return variant_of(self.config)

    @classmethod
    def from_state_dict(cls, state_dict, strict: bool = True,  # type: ignore[override]
                        **kwargs) -> 'ZoeDepth':
        """Full model from a full state dict (see :func:`load_zoedepth`)."""
        return load_zoedepth(state_dict, **kwargs)

    def forward(self, images: Tensor, domain: DomainSpec = None, *,  # type: ignore[override]
                resize: bool = True, return_probs: bool = False, return_intermediates: bool = False,
                all_heads: bool = False) -> MetricDepthOutput:
        """Metric depth at network resolution.

        Args:
            images: ``(B, 3, H, W)`` RGB in [0, 1].
            domain: see :meth:`ZoeDepthHead.forward` (None = route each image automatically).
            resize: apply the official resize rule (False: input must already be network-sized, x32).

        Returns:
            :class:`MetricDepthOutput`; ``metric_depth`` and ``rel_depth`` at the network size, in the head's
            dtype.
        """
        x = prepare_for_midas(images, self.img_size, self.keep_aspect_ratio, do_resize=resize)
        core_dtype = _param_dtype(self.core, x.dtype)
        rel_depth, features = self.core(x.to(core_dtype))
        head_dtype = self.conv2.weight.dtype
        if core_dtype != head_dtype:
            rel_depth, features = rel_depth.to(head_dtype), [f.to(head_dtype) for f in features]
        out = ZoeDepthHead.forward(self, rel_depth, features, domain, return_probs=return_probs,
                                   return_intermediates=return_intermediates, all_heads=all_heads)
        out.rel_depth = rel_depth
        return out

    def _infer_once(self, images: Tensor, domain: DomainSpec, pad_input: bool, fh: float, fw: float,
                    upsampling_mode: str) -> MetricDepthOutput:
        pad_h, pad_w = pad_amounts(images.shape[-2], images.shape[-1], fh, fw) if pad_input else (0, 0)
        x = pad_reflect(images, pad_h, pad_w)
        out = self(x, domain)
        depth = out.metric_depth
        if tuple(depth.shape[-2:]) != tuple(x.shape[-2:]):
            depth = F.interpolate(depth, size=x.shape[-2:], mode=upsampling_mode, align_corners=False)
        out.metric_depth = crop_padding(depth, pad_h, pad_w)
        return out

    @torch.no_grad()
    def infer(self, images: Tensor, domain: DomainSpec = None, *, pad_input: bool = True,
              with_flip_aug: bool = False, fh: float = 3.0, fw: float = 3.0,
              upsampling_mode: str = 'bicubic') -> MetricDepthOutput:
        """Official inference: reflect padding, forward, bicubic resize back to the input, crop.

        Args:
            images: ``(B, 3, H, W)`` RGB in [0, 1].
            domain: None (per-image routing), ``'indoor'``/``'outdoor'`` or a per-image list (NK).
            pad_input: reflect-pad ``int(sqrt(H/2)*fh)`` rows / ``int(sqrt(W/2)*fw)`` columns (official).
            with_flip_aug: average with the flipped prediction (official default True; off here). Each pass
                routes on its own as in the official code; route fields come from the unflipped pass.

        Returns:
            :class:`MetricDepthOutput` with ``metric_depth`` ``(B, 1, H, W)`` in metres at the input size;
            ``rel_depth`` stays at network size (of the padded input).
        """
        check_images(images)
        out = self._infer_once(images, domain, pad_input, fh, fw, upsampling_mode)
        if with_flip_aug:
            flipped = self._infer_once(torch.flip(images, dims=[3]), domain, pad_input, fh, fw,
                                       upsampling_mode)
            out.metric_depth = (out.metric_depth + torch.flip(flipped.metric_depth, dims=[3])) / 2
        return out


def build_zoedepth(variant: str = 'N', core_config: BeitDPTConfig = BeitDPTConfig(),
                   img_size: Optional[Tuple[int, int]] = None, keep_aspect_ratio: bool = True,
                   **head_overrides) -> ZoeDepth:
    """Randomly initialised ZoeD_M12_{N,K,NK} (use ``with torch.device('meta'):`` to build without memory).

    Head widths follow the core (``features`` and ``head_features_2``); ``head_overrides`` go to the preset.
    """
    head_cfg = ZoeDepthHeadConfig.preset(variant, **head_overrides)
    f = core_config.features
    head_cfg = replace(head_cfg, btlnck_channels=f, block_channels=(f,) * len(head_cfg.block_channels),
                       out_conv_channels=core_config.head_features_2)
    size = img_size or DEFAULT_IMG_SIZE[variant_of(head_cfg)]
    return ZoeDepth(MidasCore(core_config), head_cfg, size, keep_aspect_ratio)


def load_zoedepth(source: StateSource, *, variant: Optional[str] = None, device: torch.device | str = 'cpu',
                  dtype: torch.dtype = torch.float32, img_size: Optional[Tuple[int, int]] = None,
                  keep_aspect_ratio: bool = True, **head_overrides) -> ZoeDepth:
    """Build and strictly load a full ZoeDepth model (eval mode) from a released checkpoint.

    Args:
        source: path to ``.pt``/``.pth`` (``weights_only=True``) or ``.safetensors``, or a state dict; the
            ``'model'`` wrapper and a leading ``'module.'`` are handled.
        variant: ``'N'``, ``'K'`` or ``'NK'`` to assert (and to force normed bins for K); None = infer.
        device, dtype: where and in which float type the model ends up (``'meta'`` skips materialising).
        img_size: network size of the resize rule (default 384x512, K 384x768).
        head_overrides: fields of :class:`ZoeDepthHeadConfig` (e.g. ``domains`` for another K depth range).

    Raises:
        CheckpointMismatchError: the file does not match (names the missing / unexpected / mis-shaped keys).
    """
    sd = read_state_dict(source)
    core_sd, head_sd = split_core_head(sd)
    if not core_sd:
        raise CheckpointMismatchError('no core.core.* entries: not a full ZoeDepth checkpoint '
                                      '(use ZoeDepthHead.from_state_dict for a head-only state dict)')
    if variant is not None:
        variant = str(variant).upper()
        if variant not in DEFAULT_IMG_SIZE:
            raise ValueError(f"variant must be 'N', 'K' or 'NK', got {variant!r}")
        if variant != 'NK':
            head_overrides.setdefault('bin_centers_type', 'normed' if variant == 'K' else 'softplus')
    core_cfg = core_config_from_state_dict(core_sd)
    head_cfg = head_config_from_state_dict(head_sd, **head_overrides)
    found = variant_of(head_cfg)
    if variant is not None and variant != found:
        raise CheckpointMismatchError(f'asked for ZoeD_M12_{variant} but the checkpoint holds {found}')
    with torch.device('meta'):
        model = ZoeDepth(MidasCore(core_cfg), head_cfg, img_size or DEFAULT_IMG_SIZE[found],
                         keep_aspect_ratio)
    model.load_state_dict(reconcile_state_dict(model, sd), strict=True, assign=True)
    if torch.device(device).type != 'meta':
        model.to(device=device, dtype=dtype)
        left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
        if left:
            raise CheckpointMismatchError(f'tensors left unloaded: {left[:8]}')
    logger.info('loaded ZoeD_M12_%s (%d tensors)', found, len(sd))
    return model.eval()
