"""Depth Anything V2 (relative and metric), weight-compatible with the released checkpoints.

Entry points:

- :func:`load_depth_anything` - model with released weights (strict, weights-only).
- :func:`build_depth_anything` - the same architecture at random initialisation.
- :func:`image_to_tensor` / :func:`resize_back` - the official pre- and post-processing.

Licences of the released weights: Depth-Anything-V2-Small (vits) Apache-2.0; Base/Large/Giant
CC-BY-NC-4.0. None are bundled.
"""
from .config import ENCODERS, DepthAnythingConfig, released_config
from .dinov2 import DinoVisionTransformer, interpolate_pos_embed
from .dpt import DPTHead
from .loader import (build_depth_anything, describe_checkpoint, load_depth_anything,
                     read_depth_anything_state_dict)
from .model import DepthAnythingV2
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, image_to_tensor, network_size, resize_back

__all__ = ['ENCODERS', 'DepthAnythingConfig', 'DepthAnythingV2', 'DinoVisionTransformer', 'DPTHead',
           'IMAGENET_MEAN', 'IMAGENET_STD', 'build_depth_anything', 'describe_checkpoint', 'image_to_tensor',
           'interpolate_pos_embed', 'load_depth_anything', 'network_size', 'read_depth_anything_state_dict',
           'released_config']
