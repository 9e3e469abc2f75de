"""Strong perturbations of the student's unlabeled input (Depth Anything): colour jitter, Gaussian blur and
CutMix boxes. Batched torch ops on ``(B, 3, H, W)`` RGB in [0, 1], driven by an explicit generator so a run
(and a resumed run) repeats exactly. The teacher's labels come from the clean images.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['colour_jitter', 'gaussian_blur', 'cutmix_boxes', 'strong_perturb']


def _u(gen: torch.Generator, n: int, lo: float, hi: float, device) -> Tensor:
    return (lo + (hi - lo) * torch.rand(n, generator=gen)).to(device)


def colour_jitter(x: Tensor, gen: torch.Generator, strength: float = 0.4, prob: float = 0.8) -> Tensor:
    """Per sample (with probability ``prob``): brightness, contrast and saturation factors in
    ``[1 - strength, 1 + strength]`` and per-channel gains in ``[1 - strength / 2, 1 + strength / 2]``."""
    b = x.shape[0]
    on = (torch.rand(b, generator=gen) < prob).to(x.device).view(b, 1, 1, 1)
    v = lambda lo, hi: _u(gen, b, lo, hi, x.device).view(b, 1, 1, 1)  # noqa: E731
    y = x * v(1 - strength, 1 + strength)
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - mean) * v(1 - strength, 1 + strength) + mean
    grey = y.mean(dim=1, keepdim=True)
    y = (y - grey) * v(1 - strength, 1 + strength) + grey
    gains = (1 - strength / 2 + strength * torch.rand(b, 3, generator=gen)).to(x.device).view(b, 3, 1, 1)
    y = (y * gains).clamp(0, 1)
    return torch.where(on, y, x)


def gaussian_blur(x: Tensor, gen: torch.Generator, prob: float = 0.5, sigma: tuple = (0.1, 1.5)) -> Tensor:
    """Per sample (with probability ``prob``): separable Gaussian blur of a sigma uniform in ``sigma``."""
    b = x.shape[0]
    on = torch.rand(b, generator=gen) < prob
    sig = _u(gen, b, sigma[0], sigma[1], 'cpu')
    out = x.clone()
    radius = int(math.ceil(3 * sigma[1]))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    for i in torch.nonzero(on).flatten().tolist():
        k = torch.exp(-0.5 * (t / float(sig[i])) ** 2)
        k = (k / k.sum()).to(x.dtype)
        img = F.pad(x[i:i + 1], (radius, radius, radius, radius), mode='replicate')
        img = F.conv2d(img, k.view(1, 1, 1, -1).expand(3, 1, 1, -1).contiguous(), groups=3)
        out[i:i + 1] = F.conv2d(img, k.view(1, 1, -1, 1).expand(3, 1, -1, 1).contiguous(), groups=3)
    return out


def cutmix_boxes(batch: int, height: int, width: int, gen: torch.Generator, prob: float = 0.5,
                 area: tuple = (0.02, 0.4), ratio: tuple = (0.3, 1 / 0.3)) -> Tensor:
    """``(B, H, W)`` boolean boxes (all False for the samples not mixed, with probability ``1 - prob``): area
    fraction uniform in ``area``, aspect ratio log-uniform in ``ratio``, position uniform inside the image."""
    boxes = torch.zeros(batch, height, width, dtype=torch.bool)
    for i in range(batch):
        if float(torch.rand(1, generator=gen)) >= prob:
            continue
        a = float(_u(gen, 1, area[0], area[1], 'cpu')) * height * width
        r = math.exp(float(_u(gen, 1, math.log(ratio[0]), math.log(ratio[1]), 'cpu')))
        h = max(1, min(height, int(round(math.sqrt(a / r)))))
        w = max(1, min(width, int(round(math.sqrt(a * r)))))
        y0 = int(torch.randint(0, height - h + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, width - w + 1, (1,), generator=gen))
        boxes[i, y0:y0 + h, x0:x0 + w] = True
    return boxes


def strong_perturb(x: Tensor, gen: torch.Generator, jitter: float = 0.4, blur_prob: float = 0.5) -> Tensor:
    """Colour jitter then Gaussian blur (the student's view of an unlabeled image)."""
    return gaussian_blur(colour_jitter(x, gen, jitter), gen, blur_prob)
