"""Indoor/outdoor probability of one image from a ZoeDepth NK router alone (no metric-bins head).

The bundled light NK model's router (ResNet-18 core + ``conv2`` + patch transformer + classifier) is the
routing signal for metric models without a router of their own (Depth Anything V2 Hypersim / VKITTI):
only that part runs, so the bins heads cost nothing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dro_depth.errors import DroDepthError
from dro_depth.models.metric.preprocess import prepare_for_midas

__all__ = ['DomainRouter']


class DomainRouter:
    """``p_outdoor`` of an RGB image from a two-head (NK) ZoeDepth model's router.

    Args:
        checkpoint: light NK ``.safetensors`` (None = the bundled default metric model).
        device: torch device.

    Raises:
        DroDepthError: the model has no router (a single-head N or K model). FileNotFoundError: no file.
    """

    def __init__(self, checkpoint: str | Path | None = None, device: torch.device | str = 'cpu') -> None:
        from dro_depth.models.metric.light import load_light_zoedepth
        if checkpoint is None:
            from dro_depth.weights import default_metric_checkpoint
            checkpoint = default_metric_checkpoint()
            if checkpoint is None:
                raise FileNotFoundError('no router checkpoint given and none is bundled')
        self.checkpoint = Path(checkpoint)
        self.model, _ = load_light_zoedepth(self.checkpoint, device=device)
        self.model.eval()
        if not self.model.config.multi_head:
            raise DroDepthError(f'{checkpoint}: a {self.model.variant} model has no indoor/outdoor router; '
                                'routing needs a two-head (NK) model')
        self.device = torch.device(device)

    @torch.inference_mode()
    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """``uint8 (H, W, 3)`` RGB -> ``float64 (2,)`` router probabilities (indoor, outdoor)."""
        x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1)[None].float() / 255
        m = self.model
        x = prepare_for_midas(x, m.img_size, m.keep_aspect_ratio, do_resize=True)
        _, features = m.core(x)
        token = m.patch_transformer(m.conv2(features[1].float()))[0]
        probs = torch.softmax(m.mlp_classifier(token).float(), dim=-1)[0]
        return probs.double().cpu().numpy()
