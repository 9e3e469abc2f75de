"""Official Depth Anything V2 pre- and post-processing (``image2tensor`` / ``infer_image``), in torch.

Keep-aspect ``lower_bound`` resize (both sides >= the input size, each rounded to a multiple of 14),
bicubic without antialias (matches cv2 ``INTER_CUBIC`` to < 1e-4), ImageNet normalisation; the prediction
goes back to the raw size bilinearly with ``align_corners=True``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dro_depth.errors import DroDepthError

__all__ = ['IMAGENET_MEAN', 'IMAGENET_STD', 'network_size', 'image_to_tensor', 'resize_back']

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _multiple(x: float, multiple: int, min_val: int) -> int:
    y = int(np.round(x / multiple) * multiple)  # numpy rounds half to even, as the official code
    if y < min_val:
        y = int(np.ceil(x / multiple) * multiple)
    return y


def network_size(height: int, width: int, input_size: int = 518, multiple: int = 14) -> tuple[int, int]:
    """Network ``(height, width)`` for a raw image, as the official ``Resize(lower_bound)``.

    Examples: 480x640 -> (518, 686); 375x1242 -> (518, 1722); 1080x1920 -> (518, 924).

    Raises:
        DroDepthError: an image side below 14 px, or an input size below 14.
    """
    if height < multiple or width < multiple:
        raise DroDepthError(f'image {height}x{width} is too small for Depth Anything: both sides must be '
                            f'at least {multiple} px')
    if input_size < multiple:
        raise DroDepthError(f'input size {input_size} must be at least {multiple} px')
    scale = max(input_size / height, input_size / width)
    return (_multiple(scale * height, multiple, input_size), _multiple(scale * width, multiple, input_size))


def image_to_tensor(image: np.ndarray | Tensor, input_size: int = 518, *, bgr: bool = False,
                    dtype: torch.dtype = torch.float32, device: torch.device | str = 'cpu') -> Tensor:
    """Raw ``uint8 (H, W, 3)`` RGB image -> normalised network input ``(1, 3, h, w)`` (h, w from
    :func:`network_size`).

    Args:
        image: uint8 (or float in [0, 255]) ``(H, W, 3)`` array or tensor, RGB (BGR when ``bgr``).
        input_size: lower bound of both network sides (518 released).
        dtype: compute and output dtype (the official code resizes in float64, then casts to float32).

    Raises:
        DroDepthError: not an ``(H, W, 3)`` image, or a side below 14 px.
    """
    t = torch.as_tensor(np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image)
    if t.dim() != 3 or t.shape[-1] != 3:
        raise DroDepthError(f'expected an (H, W, 3) colour image, got shape {tuple(t.shape)}')
    h, w = int(t.shape[0]), int(t.shape[1])
    nh, nw = network_size(h, w, input_size)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    x = t.to(device=device, dtype=work).permute(2, 0, 1).unsqueeze(0) / 255.0
    if bgr:
        x = x.flip(1)
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode='bicubic', align_corners=False, antialias=False)
    mean = torch.tensor(IMAGENET_MEAN, dtype=work, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=work, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).to(dtype)


def resize_back(depth: Tensor, height: int, width: int) -> Tensor:
    """Network-size prediction ``(B, h, w)`` -> ``(B, height, width)``, bilinear ``align_corners=True``."""
    if tuple(depth.shape[-2:]) == (height, width):
        return depth
    return F.interpolate(depth.unsqueeze(1), size=(height, width), mode='bilinear',
                         align_corners=True).squeeze(1)
