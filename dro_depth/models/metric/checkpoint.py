"""Reading ZoeDepth checkpoints and inferring the architecture from their keys and shapes.

Released files (``ZoeD_M12_{N,K,NK}.pt``) hold the state dict under ``'model'``; a leading ``'module.'`` is
stripped as the official loader does. Tolerated differences: missing ``relative_position_index`` /
``k_idx`` / ``K_minus_1`` (constant buffers, regenerated) and present ``attn.k_bias`` (a zero buffer some
exporters keep). Anything else that does not match raises :class:`CheckpointMismatchError` naming the keys.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Mapping, Union

import torch
from torch import Tensor, nn

from dro_depth.models.checkpoints import CheckpointError, check_state_dict, read_weights_source
from .beit import relative_position_index
from .config import (KITTI, NYU, BeitDPTConfig, RouterConfig,
                     ZoeDepthHeadConfig)

logger = logging.getLogger(__name__)

CORE_PREFIX = 'core.core.'
StateSource = Union[str, Path, Mapping[str, Tensor]]


class CheckpointMismatchError(CheckpointError):
    """A state dict does not fit the model: lists the missing, unexpected and mis-shaped keys."""


def read_state_dict(source: StateSource) -> Dict[str, Tensor]:
    """Load a state dict from a ``.pt``/``.pth`` (``weights_only=True``) or ``.safetensors`` file, or take a
    mapping; unwrap ``'model'`` (or ``'state_dict'``) and strip a leading ``'module.'``.
    """
    _, raw, _ = read_weights_source(source, 'ZoeDepth')
    if not isinstance(raw, Mapping):
        raise TypeError(f'checkpoint holds a {type(raw).__name__}, expected a dict')
    for wrapper in ('model', 'state_dict'):
        if wrapper in raw and isinstance(raw[wrapper], Mapping):
            raw = raw[wrapper]
            break
    out: Dict[str, Tensor] = {}
    for key, value in raw.items():
        if not isinstance(value, Tensor):
            raise TypeError(f'checkpoint entry {key!r} is a {type(value).__name__}, not a tensor')
        out[key[len('module.'):] if key.startswith('module.') else key] = value
    return out


def split_core_head(state_dict: Mapping[str, Tensor]) -> tuple[Dict[str, Tensor], Dict[str, Tensor]]:
    """Split a full ZoeDepth state dict into ``core.core.*`` (prefix removed) and head entries."""
    core = {k[len(CORE_PREFIX):]: v for k, v in state_dict.items() if k.startswith(CORE_PREFIX)}
    head = {k: v for k, v in state_dict.items() if not k.startswith('core.')}
    return core, head


def _shape(sd: Mapping[str, Tensor], key: str) -> torch.Size:
    if key not in sd:
        raise CheckpointMismatchError(f'state dict lacks {key!r}, needed to infer the architecture')
    return sd[key].shape


def _indices(sd: Mapping[str, Tensor], pattern: str) -> List[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in sd for m in [rx.match(k)] if m})


def core_config_from_state_dict(core_sd: Mapping[str, Tensor]) -> BeitDPTConfig:
    """BEiT/DPT config from ``core.core.*`` entries (prefix removed). Hooks: the MiDaS quarter rule."""
    p = 'pretrained.model.'
    embed = int(_shape(core_sd, p + 'cls_token')[-1])
    blocks = _indices(core_sd, r'pretrained\.model\.blocks\.(\d+)\.')
    if not blocks:
        raise CheckpointMismatchError('state dict has no pretrained.model.blocks.* entries')
    depth = blocks[-1] + 1
    rows, heads = _shape(core_sd, p + 'blocks.0.attn.relative_position_bias_table')
    side = math.isqrt(int(rows) - 3)
    if side * side != rows - 3 or side % 2 == 0:
        raise CheckpointMismatchError(f'relative_position_bias_table has {rows} rows, not (2w-1)^2+3')
    patch = int(_shape(core_sd, p + 'patch_embed.proj.weight')[-1])
    hidden = int(_shape(core_sd, p + 'blocks.0.mlp.fc1.weight')[0])
    return BeitDPTConfig(
        img_size=(side + 1) // 2 * patch, patch_size=patch,
        in_chans=int(_shape(core_sd, p + 'patch_embed.proj.weight')[1]), embed_dim=embed, depth=depth,
        num_heads=int(heads), mlp_ratio=hidden / embed,
        num_classes=int(_shape(core_sd, p + 'head.weight')[0]),
        hooks=BeitDPTConfig.evenly_spaced_hooks(depth),
        reassemble_channels=tuple(int(_shape(core_sd, f'pretrained.act_postprocess{k}.3.weight')[0])
                                  for k in range(1, 5)),  # type: ignore[arg-type]
        features=int(_shape(core_sd, 'scratch.layer1_rn.weight')[0]),
        head_features_2=int(_shape(core_sd, 'scratch.output_conv.2.weight')[0]))


def head_config_from_state_dict(head_sd: Mapping[str, Tensor], **overrides) -> ZoeDepthHeadConfig:
    """Metric-head config (N, K or NK) from the head entries of a state dict.

    Single head with attractor outputs (32, 16, 8, 2) -> K (normed bins, 2 outputs per attractor); other
    single heads -> softplus (N); ``seed_bin_regressors.*`` -> NK. ``use_rel_depth`` defaults to True for a
    single head and False for NK (as released). ``overrides`` replace any inferred field.
    """
    multi = any(k.startswith('seed_bin_regressors.') for k in head_sd)
    if multi:
        names: List[str] = []
        for k in head_sd:
            if k.startswith('seed_bin_regressors.'):
                name = k.split('.')[1]
                if name not in names:
                    names.append(name)
        if sorted(names) != ['kitti', 'nyu']:
            raise CheckpointMismatchError(f'routed head must have nyu and kitti heads, found {names}')
        seed_p, att_p, clb_p = f'seed_bin_regressors.{names[0]}', f'attractors.{names[0]}.', \
            f'conditional_log_binomial.{names[0]}.'
        domains = (NYU, KITTI)  # router index order, whatever the key order in the file
    else:
        seed_p, att_p, clb_p = 'seed_bin_regressor', 'attractors.', 'conditional_log_binomial.'
    embed = int(_shape(head_sd, 'seed_projector._net.2.weight')[0])
    stages = _indices(head_sd, r'projectors\.(\d+)\._net\.0\.weight')
    if not stages or stages != list(range(len(stages))):
        raise CheckpointMismatchError(f'projectors.* entries are missing or not contiguous: {stages}')
    att_out = tuple(int(_shape(head_sd, f'{att_p}{i}._net.2.weight')[0]) for i in stages)
    clb_hidden, clb_in = (int(s) for s in _shape(head_sd, clb_p + 'mlp.0.weight')[:2])
    use_rel = bool(overrides.pop('use_rel_depth', not multi))
    bin_type = overrides.pop('bin_centers_type', None)
    if bin_type is None:
        bin_type = 'normed' if not multi and att_out == (32, 16, 8, 2) else 'softplus'
    if bin_type == 'normed':
        if any(n % 2 for n in att_out):
            raise CheckpointMismatchError(f'normed attractors need an even number of outputs, got {att_out}')
        n_att = tuple(n // 2 for n in att_out)
    else:
        n_att = att_out
    if not multi:
        domains = (KITTI if bin_type == 'normed' else NYU,)
    factor = clb_in // clb_hidden
    if factor < 1 or clb_in // factor != clb_hidden:
        raise CheckpointMismatchError(f'log-binomial MLP {clb_in}->{clb_hidden} is not in // factor')
    router = RouterConfig()
    if multi:
        layers = _indices(head_sd, r'patch_transformer\.transformer_encoder\.layers\.(\d+)\.')
        router = RouterConfig(
            embedding_dim=int(_shape(head_sd, 'patch_transformer.embedding_convPxP.weight')[0]),
            num_layers=len(layers),
            dim_feedforward=int(_shape(
                head_sd, 'patch_transformer.transformer_encoder.layers.0.linear1.weight')[0]))
    cfg = ZoeDepthHeadConfig(
        btlnck_channels=int(_shape(head_sd, 'conv2.weight')[0]),
        block_channels=tuple(int(_shape(head_sd, f'projectors.{i}._net.0.weight')[1]) for i in stages),
        out_conv_channels=clb_in - embed - int(use_rel),
        n_bins=int(_shape(head_sd, seed_p + '._net.2.weight')[0]),
        bin_embedding_dim=embed, bin_centers_type=bin_type,
        seed_mlp_dim=int(_shape(head_sd, seed_p + '._net.0.weight')[0]),
        seed_projector_mlp_dim=int(_shape(head_sd, 'seed_projector._net.0.weight')[0]),
        projector_mlp_dim=int(_shape(head_sd, 'projectors.0._net.0.weight')[0]),
        attractor_mlp_dim=int(_shape(head_sd, att_p + '0._net.0.weight')[0]),
        n_attractors=n_att, memory_efficient=multi, use_rel_depth=use_rel, clb_bottleneck_factor=factor,
        domains=domains, router=router)
    return replace(cfg, **overrides) if overrides else cfg


def _regenerate(key: str, expected: Mapping[str, Tensor]) -> Tensor:
    """Value of a tolerated constant buffer missing from a checkpoint (built on the CPU)."""
    cpu = torch.device('cpu')
    if key.endswith('attn.relative_position_index'):
        side = math.isqrt(expected[key].shape[0] - 1)
        return relative_position_index((side, side), device=cpu)
    if key.endswith('log_binomial_transform.k_idx'):
        return torch.arange(expected[key].shape[1], device=cpu).view(1, -1, 1, 1)
    if key.endswith('log_binomial_transform.K_minus_1'):
        n_bins = expected[key.replace('K_minus_1', 'k_idx')].shape[1]
        return torch.full((1, 1, 1, 1), float(n_bins - 1), device=cpu)
    raise KeyError(key)


_TOLERATED_MISSING = ('attn.relative_position_index', 'log_binomial_transform.k_idx',
                      'log_binomial_transform.K_minus_1')
_TOLERATED_UNEXPECTED = ('attn.k_bias',)


def reconcile_state_dict(module: nn.Module, state_dict: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Check ``state_dict`` against ``module.state_dict()`` and fill/drop the tolerated constant buffers.

    Raises:
        CheckpointMismatchError: naming missing, unexpected and mis-shaped keys.
    """
    expected = module.state_dict(keep_vars=True)
    sd = dict(state_dict)
    for key in list(sd):
        if key not in expected and key.endswith(_TOLERATED_UNEXPECTED):
            dropped = sd.pop(key)
            if dropped.numel() and dropped.device.type != 'meta' and bool(dropped.abs().max() > 0):
                raise CheckpointMismatchError(f'{key} is not zero; this BEiT variant is not supported')
    missing = [k for k in expected if k not in sd]
    filled = [k for k in missing if k.endswith(_TOLERATED_MISSING)]
    for key in filled:
        sd[key] = _regenerate(key, expected)
    if filled:
        logger.debug('regenerated %d constant buffers missing from the checkpoint', len(filled))
    missing = [k for k in missing if k not in filled]
    check_state_dict(expected, sd, source=type(module).__name__, error=CheckpointMismatchError)
    return sd


def load_checked(module: nn.Module, state_dict: Mapping[str, Tensor], strict: bool = True,
                 assign: bool = False) -> nn.Module:
    """``module.load_state_dict`` after :func:`reconcile_state_dict` (when ``strict``), with clear errors."""
    sd = reconcile_state_dict(module, state_dict) if strict else dict(state_dict)
    module.load_state_dict(sd, strict=strict, assign=assign)
    return module
