"""Torch device selection shared by the estimators and training (no other dro_depth imports)."""
from __future__ import annotations

import torch

from .errors import DroDepthError

__all__ = ['resolve_device']


def resolve_device(device: str) -> torch.device:
    """'auto' gives CUDA when available, else CPU; anything else is passed to torch.device."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dev = torch.device(device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise DroDepthError(f'device {device!r} requested but CUDA is not available on this machine')
    return dev
