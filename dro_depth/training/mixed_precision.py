"""bf16 autocast for DRO training on CPU (AMX-bf16) or GPU, with the geometry kept in float32.

Plain ``torch.autocast`` around the whole DRO forward would also run the pinhole projection (``K @ X``) and
the pose algebra in bfloat16: with 8 mantissa bits a pixel coordinate near 128 is off by up to 0.5 px,
which corrupts the correlation lookup and the pose gradients. :func:`enable_bf16_regions` instead wraps
only the convolutional sub-networks (encoders, heads, update blocks) with forward hooks that enter
autocast and cast their outputs back to float32, so everything between them (warping, SE(3), depth
scaling, losses) stays float32. The module tree and ``state_dict`` keys are unchanged, so checkpoints
of a bf16 run load into a float32 model and back.
"""
from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

__all__ = ['BF16_REGIONS', 'enable_bf16_regions', 'disable_bf16_regions', 'bf16_supported']

logger = logging.getLogger(__name__)

#: DRONet children whose inputs and outputs are features or network deltas, never geometry
BF16_REGIONS = ('fnet', 'cnet_depth', 'cnet_pose', 'depth_head', 'pose_head', 'upmask_net',
                'update_block_depth', 'update_block_pose')

_HANDLES = '_bf16_region_handles'


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast is worth using on ``device`` (CUDA with bf16, or any CPU: torch
    emulates bf16 where the CPU lacks AVX512-bf16/AMX, slower but correct)."""
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    return device.type == 'cpu'


def _to_float(value: Any) -> Any:
    if torch.is_tensor(value):
        return value.float() if value.dtype == torch.bfloat16 else value
    if isinstance(value, tuple):
        return tuple(_to_float(v) for v in value)
    if isinstance(value, list):
        return [_to_float(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_float(v) for k, v in value.items()}
    return value


def enable_bf16_regions(model: nn.Module, device_type: str = 'cpu',
                        regions: tuple[str, ...] = BF16_REGIONS) -> int:
    """Run the named children of ``model`` under bf16 autocast, their outputs cast back to float32.

    Args:
        model: a DRONet (or any module with children named in ``regions``; missing names are skipped).
        device_type: ``'cpu'`` or ``'cuda'`` (the autocast device type).
        regions: child names.

    Returns:
        The number of wrapped children. Idempotent: a second call re-wraps the same children.
    """
    disable_bf16_regions(model)
    handles = []
    for name in regions:
        child = getattr(model, name, None)
        if child is None:
            continue
        contexts: list[torch.autocast] = []

        def pre(_mod, _args, contexts=contexts):
            ctx = torch.autocast(device_type, dtype=torch.bfloat16)
            ctx.__enter__()
            contexts.append(ctx)

        def post(_mod, _args, output, contexts=contexts):
            contexts.pop().__exit__(None, None, None)
            return _to_float(output)

        handles.append(child.register_forward_pre_hook(pre))
        handles.append(child.register_forward_hook(post))
    setattr(model, _HANDLES, handles)
    logger.info('bf16 autocast on %d sub-networks (%s)', len(handles) // 2, device_type)
    return len(handles) // 2


def disable_bf16_regions(model: nn.Module) -> None:
    """Undo :func:`enable_bf16_regions` (no-op when not enabled)."""
    for h in getattr(model, _HANDLES, []):
        h.remove()
    if hasattr(model, _HANDLES):
        delattr(model, _HANDLES)
