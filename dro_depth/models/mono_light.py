"""Light relative-depth model: the ResNet-18 + DPT core of the light metric model, without the metric head.

It predicts affine-invariant inverse depth (disparity up to scale and shift, larger = nearer, ReLU), the
output of the Depth Anything recipe (:mod:`dro_depth.training.mono`). Input: RGB in [0, 1], normalised as the
light metric model's core expects (``(x - 0.5) / 0.5``). Files are safetensors with the config in the header
(``format: dro_depth.mono_light``); no weights ship with it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .metric.light import LightCore

__all__ = ['LightRelativeDepth', 'MONO_LIGHT_FORMAT', 'save_light_relative', 'load_light_relative']

#: ``format`` value in the safetensors header of a light relative-depth model.
MONO_LIGHT_FORMAT = 'dro_depth.mono_light'


class LightRelativeDepth(nn.Module):
    """ResNet-18 + DPT decoder of width ``width`` predicting relative inverse depth.

    Args:
        width: decoder width. output_stride: 1 (output at network size) or 2 (half, upsampled back).
        img_size: network size ``(h, w)`` (multiples of 32) that :meth:`infer` resizes images to.
    """

    def __init__(self, width: int = 64, output_stride: int = 1, img_size: Tuple[int, int] = (96, 128)) -> None:
        super().__init__()
        if img_size[0] % 32 or img_size[1] % 32:
            raise ValueError(f'img_size must be multiples of 32, got {img_size}')
        self.core = LightCore(width, output_stride=output_stride)
        self.img_size = (int(img_size[0]), int(img_size[1]))

    def forward(self, images: Tensor, features: Optional[List[Tensor]] = None) -> Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] (H, W multiples of 32) -> ``(B, H, W)`` relative inverse depth.

        ``features``: if a list is given, the encoder's four stage outputs are appended to it.
        """
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2] % 32 or images.shape[-1] % 32:
            raise ValueError(f'expected (B, 3, H, W) with H, W multiples of 32, got {tuple(images.shape)}')
        feats = self.core.encoder((images - 0.5) / 0.5)
        if features is not None:
            features.extend(feats)
        rel, _ = self.core.decoder(feats)
        if rel.shape[-2:] != images.shape[-2:]:
            rel = F.interpolate(rel[:, None], size=images.shape[-2:], mode='bilinear', align_corners=False)[:, 0]
        return rel

    @torch.no_grad()
    def infer(self, images: Tensor) -> Tensor:
        """Any-size ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 1, H, W)`` relative inverse depth (bilinear resize
        to the network size and back)."""
        h, w = images.shape[-2:]
        x = images if (h, w) == self.img_size else F.interpolate(images, size=self.img_size, mode='bilinear',
                                                                 align_corners=False)
        out = self(x)[:, None]
        if (h, w) != self.img_size:
            out = F.interpolate(out, size=(h, w), mode='bilinear', align_corners=False)
        return out

    def config(self) -> Dict[str, object]:
        return {'format': MONO_LIGHT_FORMAT, 'width': self.core.width, 'output_stride': self.core.output_stride,
                'img_size': list(self.img_size)}


def save_light_relative(model: LightRelativeDepth, path: str | Path,
                        metadata: Optional[Mapping[str, object]] = None, half: bool = False) -> Path:
    """Write the model as safetensors with its config in the header."""
    from .checkpoints import save_state_dict

    return save_state_dict(model.state_dict(), path, metadata={**model.config(), **dict(metadata or {})},
                           half=half)


def load_light_relative(path: str | Path, device: torch.device | str = 'cpu'
                        ) -> Tuple[LightRelativeDepth, Dict[str, object]]:
    """Rebuild and strictly load a model written by :func:`save_light_relative`: ``(model in eval mode,
    header)``.

    Raises:
        FileNotFoundError: no such file. CheckpointError: another kind of file, or keys/shapes differ.
    """
    from .checkpoints import CheckpointError, check_state_dict, load_weights_file

    sd, meta = load_weights_file(Path(path))
    if meta.get('format') != MONO_LIGHT_FORMAT:
        raise CheckpointError(f'{path}: not a light relative-depth model (header format {meta.get("format")!r}, '
                              f'expected {MONO_LIGHT_FORMAT!r})')
    try:
        model = LightRelativeDepth(int(meta['width']), int(meta['output_stride']),
                                   tuple(int(v) for v in meta['img_size']))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f'{path}: light relative-depth header is incomplete or invalid ({exc})') from exc
    expected = model.state_dict()
    check_state_dict(expected, sd, source=str(path))
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in sd.items()}, strict=True)
    return model.to(device).eval(), meta
