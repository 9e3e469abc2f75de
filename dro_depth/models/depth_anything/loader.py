"""Loading released (or locally trained) Depth Anything V2 weights, strictly and weights-only."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from dro_depth.models.checkpoints import CheckpointError, check_state_dict, read_weights_source
from .config import released_config
from .model import DepthAnythingV2

__all__ = ['read_depth_anything_state_dict', 'load_depth_anything', 'build_depth_anything',
           'describe_checkpoint']

logger = logging.getLogger(__name__)


def read_depth_anything_state_dict(source: str | Path | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Tensors of a Depth Anything file (``.pth``/``.pt``/``.safetensors``) or mapping.

    A ``state_dict`` / ``model`` wrapper and a ``module.`` prefix are removed. Files are read without
    unpickling objects.

    Raises:
        CheckpointError: unreadable file, not a mapping of tensors, or not a Depth Anything state dict
            (e.g. a ZoeDepth or DRO file). FileNotFoundError: missing file.
    """
    name, raw, _ = read_weights_source(source, 'Depth Anything')
    if not isinstance(raw, Mapping):
        raise CheckpointError(f'{name}: expected a dict of tensors, found {type(raw).__name__}')
    for wrapper in ('state_dict', 'model'):
        if isinstance(raw.get(wrapper), Mapping):
            raw = raw[wrapper]
            break
    bad = [str(k) for k, v in raw.items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f'{name}: entries that are not tensors: {", ".join(bad[:8])}')
    sd = {(k[7:] if k.startswith('module.') else k): v for k, v in raw.items()}
    if not any(k.startswith('pretrained.') for k in sd) or not any(k.startswith('depth_head.') for k in sd):
        hint = ' (this looks like a ZoeDepth file)' if any(k.startswith('core.') for k in sd) else ''
        raise CheckpointError(f'{name}: not a Depth Anything V2 state dict: no pretrained.* and depth_head.* '
                              f'keys{hint}; first keys: {", ".join(list(sd)[:5])}')
    return sd


def describe_checkpoint(state_dict: Mapping[str, Tensor]) -> dict:
    """What the tensors say about the architecture: ``embed_dim``, ``depth`` (block count)."""
    cls = state_dict.get('pretrained.cls_token')
    embed = int(cls.shape[-1]) if cls is not None else None
    blocks = {int(k.split('.')[2]) for k in state_dict if k.startswith('pretrained.blocks.')}
    return {'embed_dim': embed, 'depth': max(blocks) + 1 if blocks else 0}


def build_depth_anything(encoder: str = 'vits', *, metric: bool = False, max_depth: float = 20.0,
                         depth: int | None = None, hooks: tuple[int, ...] | list[int] | None = None,
                         device: torch.device | str = 'cpu', dtype: torch.dtype = torch.float32
                         ) -> DepthAnythingV2:
    """A randomly initialised model of the released architecture (``device='meta'`` for shapes only)."""
    cfg = released_config(encoder, metric=metric, max_depth=max_depth, depth=depth, hooks=hooks)
    with torch.device(device):
        model = DepthAnythingV2(cfg)
    return model.to(dtype=dtype).eval()


def load_depth_anything(source: str | Path | Mapping[str, Tensor], *, encoder: str = 'vits',
                        metric: bool = False, max_depth: float = 20.0, depth: int | None = None,
                        hooks: tuple[int, ...] | list[int] | None = None,
                        device: torch.device | str = 'cpu', dtype: torch.dtype = torch.float32
                        ) -> DepthAnythingV2:
    """Depth Anything V2 (relative or metric) with released weights, loaded strictly, in eval mode.

    Args:
        source: a ``.pth``/``.pt``/``.safetensors`` path (read weights-only) or a state dict.
        encoder: ``'vits'``, ``'vitb'`` or ``'vitl'``.
        metric: the checkpoint is a metric one (sigmoid x ``max_depth`` metres); relative otherwise.
        max_depth: 20 for the Hypersim (indoor) and 80 for the Virtual KITTI (outdoor) checkpoints.
        depth / hooks: override the block count / hooked block indices (default: the released config).

    Raises:
        CheckpointError: a missing, unexpected (e.g. ``pretrained.register_tokens``) or mis-shaped key,
            named in the message; an encoder mismatch; not a Depth Anything file.
        DroDepthError: unknown encoder or impossible overrides.
    """
    sd = read_depth_anything_state_dict(source)
    name = str(source) if isinstance(source, (str, Path)) else '<mapping>'
    model = build_depth_anything(encoder, metric=metric, max_depth=max_depth, depth=depth, hooks=hooks,
                                 device='meta')
    found = describe_checkpoint(sd)
    if found['embed_dim'] is not None and found['embed_dim'] != model.cfg.embed_dim:
        by_width = {384: 'vits', 768: 'vitb', 1024: 'vitl', 1536: 'vitg'}
        raise CheckpointError(f'{name}: encoder mismatch: the checkpoint has embedding width '
                              f'{found["embed_dim"]} ({by_width.get(found["embed_dim"], "unknown")}), '
                              f'encoder={encoder!r} needs {model.cfg.embed_dim}')
    check_state_dict(model.state_dict(), sd, source=name)
    model = build_depth_anything(encoder, metric=metric, max_depth=max_depth, depth=depth, hooks=hooks,
                                 device='cpu', dtype=dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in sd.items()}, strict=True)
    logger.info('loaded Depth Anything V2 %s (%s) from %s', encoder,
                f'metric, max {max_depth:g} m' if metric else 'relative', name)
    return model.to(device).eval()
