"""ZoeDepth input preparation and test-time padding (official resize / normalisation rules).

Resize: MiDaS ``Resize(width, height, resize_method='minimal', ensure_multiple_of=32)``. With keep-aspect (the
``infer`` configs) the scale of ``net_h/h`` and ``net_w/w`` closer to 1 is used for both sides; every side is
rounded (numpy round, half to even) to a multiple of 32. Without it the network size is used as is.
Resampling is bilinear with ``align_corners=True`` and no antialiasing; then ``x = (x - 0.5) / 0.5``.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch.nn.functional as F
from torch import Tensor


def check_images(images: Tensor) -> None:
    """Raise a clear error unless ``images`` is a floating ``(B, 3, H, W)`` tensor."""
    if not hasattr(images, 'ndim') or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if hasattr(images, 'shape') else type(images).__name__
        raise ValueError(f'images must be (B, 3, H, W) RGB in [0, 1], got {shape}')
    if not images.is_floating_point():
        raise TypeError(f'images must be a floating tensor in [0, 1], got {images.dtype}')
    if images.shape[0] < 1 or images.shape[2] < 2 or images.shape[3] < 2:
        raise ValueError(f'images are empty or too small: {tuple(images.shape)}')


def network_size(height: int, width: int, net_size: Tuple[int, int] = (384, 512),
                 keep_aspect_ratio: bool = True, multiple_of: int = 32) -> Tuple[int, int]:
    """Network input ``(h, w)`` for an ``height x width`` image (MiDaS 'minimal' rule).

    Examples (net 384x512, keep-aspect): 480x640 -> 384x512, 375x1242 -> 384x1280, 720x1280 -> 384x672.
    """
    if height < 1 or width < 1:
        raise ValueError(f'image size must be positive, got {height}x{width}')
    scale_h = net_size[0] / height
    scale_w = net_size[1] / width
    if keep_aspect_ratio:
        if abs(1 - scale_w) < abs(1 - scale_h):
            scale_h = scale_w
        else:
            scale_w = scale_h

    def constrain(x: float) -> int:
        return int(np.round(x / multiple_of) * multiple_of)

    return constrain(scale_h * height), constrain(scale_w * width)


def prepare_for_midas(images: Tensor, net_size: Tuple[int, int] = (384, 512), keep_aspect_ratio: bool = True,
                      do_resize: bool = True) -> Tensor:
    """Resize (bilinear, ``align_corners=True``) to the network size and normalise to ``(x - 0.5) / 0.5``.

    Args:
        images: ``(B, 3, H, W)`` RGB in [0, 1].

    Returns:
        ``(B, 3, h, w)`` with h, w from :func:`network_size` (or unchanged without ``do_resize``).
    """
    check_images(images)
    x = images
    if do_resize:
        h, w = network_size(images.shape[-2], images.shape[-1], net_size, keep_aspect_ratio)
        if h < 32 or w < 32:
            raise ValueError(f'image {tuple(images.shape[-2:])} maps to a network size {h}x{w} below 32 px')
        if (h, w) != tuple(x.shape[-2:]):
            x = F.interpolate(x, size=(h, w), mode='bilinear', align_corners=True)
    elif x.shape[-2] % 32 or x.shape[-1] % 32:
        raise ValueError(f'without resizing the input size {tuple(x.shape[-2:])} must be a multiple of 32')
    return (x - 0.5) / 0.5


def pad_amounts(height: int, width: int, fh: float = 3.0, fw: float = 3.0) -> Tuple[int, int]:
    """Padding of ``infer(pad_input=True)``: ``int(sqrt(h/2) * fh)`` rows, ``int(sqrt(w/2) * fw)`` columns."""
    return int(math.sqrt(height / 2) * fh), int(math.sqrt(width / 2) * fw)


def pad_reflect(images: Tensor, pad_h: int, pad_w: int) -> Tensor:
    """Reflect-pad ``pad_h`` rows and ``pad_w`` columns on each side of ``(B, C, H, W)``."""
    if pad_h >= images.shape[-2] or pad_w >= images.shape[-1]:
        raise ValueError(f'reflect padding {pad_h}x{pad_w} needs a larger image than '
                         f'{tuple(images.shape[-2:])}')
    if pad_h == 0 and pad_w == 0:
        return images
    return F.pad(images, [pad_w, pad_w, pad_h, pad_h], mode='reflect')


def crop_padding(depth: Tensor, pad_h: int, pad_w: int) -> Tensor:
    """Undo :func:`pad_reflect` on ``(B, 1, H', W')``."""
    if pad_h > 0:
        depth = depth[:, :, pad_h:-pad_h, :]
    if pad_w > 0:
        depth = depth[:, :, :, pad_w:-pad_w]
    return depth
