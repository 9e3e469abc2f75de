"""Loading RAFT-Stereo weights (official / NeRF-Supervised releases, or this package's own files)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dro_depth.models.checkpoints import CheckpointError, check_state_dict, read_weights_source

from .config import REALTIME, RaftStereoConfig
from .raft_stereo import RAFTStereo

__all__ = ['load_raft_stereo', 'read_raft_stereo_state_dict', 'infer_config']

logger = logging.getLogger(__name__)

_WRAPPERS = ('state_dict', 'model_state_dict', 'model')


def _strip_module(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the ``nn.DataParallel`` prefix ``module.`` if every key has it."""
    keys = list(sd)
    if keys and all(k.startswith('module.') for k in keys):
        return {k[len('module.'):]: v for k, v in sd.items()}
    return dict(sd)


def read_raft_stereo_state_dict(source: str | Path | Mapping[str, Any]
                                ) -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    """Read a state dict without unpickling objects: ``(state_dict, metadata, name)``.

    Accepts a path (``raftstereo-NS.tar`` is a torch zip file; ``.pth``, ``.pt``, ``.safetensors``)
    or a mapping, optionally nested under ``state_dict`` and with or without the ``module.`` prefix.

    Raises:
        CheckpointError: unreadable, pickled objects, or entries that are not tensors.
        FileNotFoundError: no such file. TypeError: bad source type.
    """
    name, obj, meta = read_weights_source(source, 'RAFT-Stereo')
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'{name}: expected a state dict, found {type(obj).__name__}')
    for wrapper in _WRAPPERS:
        if isinstance(obj.get(wrapper), Mapping):
            extra = {k: v for k, v in obj.items() if k != wrapper and not torch.is_tensor(v)}
            meta = {**extra, **meta}
            obj = obj[wrapper]
            break
    bad = [str(k) for k, v in obj.items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f'{name}: not a state dict; entries that are not tensors: {bad[:8]}')
    return _strip_module(obj), meta, name


def infer_config(sd: Mapping[str, torch.Tensor]) -> RaftStereoConfig:
    """Architecture from the keys and shapes: the NS release layout or the realtime layout.

    Raises:
        CheckpointError: the tensors that tell them apart are missing.
    """
    probe = 'update_block.mask.2.weight'
    if probe not in sd:
        raise CheckpointError(f'not a RAFT-Stereo state dict: no key {probe!r} '
                              f'(keys start with {sorted(sd)[:4]})')
    factor = int(round((sd[probe].shape[0] / 9) ** 0.5))
    shared = 'conv2.1.weight' in sd and not any(k.startswith('fnet.') for k in sd)
    n_layers = sum(f'context_zqr_convs.{i}.weight' in sd for i in range(3))
    if shared and factor == 8 and n_layers == 2:
        return REALTIME
    n_down = {1: 0, 2: 1, 4: 2, 8: 3}.get(factor, 2)
    norm = 'batch' if 'cnet.norm1.running_mean' in sd else 'instance'
    return RaftStereoConfig(n_downsample=n_down, n_gru_layers=max(n_layers, 1), shared_backbone=shared,
                            context_norm=norm, variant='custom' if (n_down, norm) != (2, 'batch') else
                            'ns_release')


def load_raft_stereo(source: str | Path | Mapping[str, Any], *, device: str | torch.device = 'cpu',
                     dtype: torch.dtype = torch.float32, cfg: RaftStereoConfig | None = None) -> RAFTStereo:
    """RAFT-Stereo in eval mode from released or saved weights, strictly checked.

    Args:
        source: path (``raftstereo-NS.tar``, ``raftstereo-realtime.pth``, ``.safetensors``) or a state dict,
            with or without the ``module.`` prefix. Loaded weights-only.
        device: target device. dtype: floating dtype of the parameters (float32 or float64).
        cfg: architecture; inferred from the shapes when None (NS release or realtime layout).

    Returns:
        :class:`RAFTStereo` in eval mode (frozen batch-norm statistics).

    Raises:
        CheckpointError: missing or unexpected keys, or shape mismatches (named).
    """
    sd, meta, name = read_raft_stereo_state_dict(source)
    if cfg is None:
        saved = meta.get('raft_stereo_config')
        cfg = RaftStereoConfig.from_dict(saved) if isinstance(saved, Mapping) else infer_config(sd)
    model = RAFTStereo(cfg)
    check_state_dict(model.state_dict(), sd, source=name)
    model.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in sd.items()},
                          strict=True)
    if cfg.variant == 'realtime':
        logger.info('%s: raftstereo-realtime layout (fast CPU variant; shared backbone, 1/8 features, '
                    '2 GRU levels, slow-fast GRU)', name)
    return model.to(device=device, dtype=dtype).eval()
