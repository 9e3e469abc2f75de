"""ZoeDepth metric depth (ZoeD_M12_N / _K / _NK, MIT), weight-compatible with the released checkpoints.

Main entry points:

- :func:`load_zoedepth` - full model (MiDaS BEiT-L/16-384 core + N, K or NK head) from a released file.
- :class:`ZoeDepthHead` - the metric head alone (``ZoeDepthHead.from_state_dict(sd)``), per-image routing.
- :func:`build_light_zoedepth` - ResNet-18 + small DPT decoder + the same head, same ``infer()`` API.
"""
from .checkpoint import CheckpointMismatchError, read_state_dict
from .config import (BeitDPTConfig, DomainConfig, RouterConfig, ZoeDepthHeadConfig,
                     canonical_domain)
from .dpt import MidasCore
from .head import MetricDepthOutput, ZoeDepthHead
from .light import LightCore, build_light_zoedepth
from .preprocess import network_size, prepare_for_midas
from .zoedepth import ZoeDepth, build_zoedepth, load_zoedepth

__all__ = [
    'BeitDPTConfig', 'CheckpointMismatchError', 'DomainConfig', 'LightCore', 'MetricDepthOutput',
    'MidasCore', 'RouterConfig', 'ZoeDepth', 'ZoeDepthHead', 'ZoeDepthHeadConfig', 'build_light_zoedepth',
    'build_zoedepth', 'canonical_domain', 'load_zoedepth', 'network_size', 'prepare_for_midas',
    'read_state_dict',
]
