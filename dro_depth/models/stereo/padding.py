"""Input padding to a multiple of 32 as RAFT-Stereo's ``InputPadder`` (mode 'sintel', replicate)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['InputPadder']


class InputPadder:
    """Pads images so height and width are multiples of ``divis_by``.

    Mode 'sintel' splits the padding evenly (the extra pixel right/bottom); any other mode pads the
    bottom only vertically. Padding replicates the border.

    Args:
        size: ``(..., H, W)`` shape of the unpadded images. divis_by: multiple (32 for RAFT-Stereo).
        mode: 'sintel' (default) or 'kitti'.
    """

    def __init__(self, size: tuple[int, ...] | torch.Size, divis_by: int = 32, mode: str = 'sintel') -> None:
        self.height, self.width = int(size[-2]), int(size[-1])
        pad_h = (((self.height // divis_by) + 1) * divis_by - self.height) % divis_by
        pad_w = (((self.width // divis_by) + 1) * divis_by - self.width) % divis_by
        if mode == 'sintel':
            self.pad_lrtb = [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2]
        else:
            self.pad_lrtb = [pad_w // 2, pad_w - pad_w // 2, 0, pad_h]

    def pad(self, *images: torch.Tensor) -> list[torch.Tensor]:
        """Each (B, C, H, W) -> (B, C, H + pad_h, W + pad_w), replicated borders."""
        return [F.pad(x, self.pad_lrtb, mode='replicate') for x in images]

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """(..., H + pad_h, W + pad_w) -> (..., H, W), the inverse crop of :meth:`pad`."""
        left, right, top, bottom = self.pad_lrtb
        h, w = x.shape[-2:]
        return x[..., top:h - bottom, left:w - right]
