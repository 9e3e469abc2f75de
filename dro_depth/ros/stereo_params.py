"""Parameters of ``stereo_node``: one table for declarations, validation, config/stereo.yaml and the
launch file.

Imports no ROS package at import time. Reuses :class:`~dro_depth.ros.params.ParamSpec`.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

from .params import MALLOC_PARAMETERS, POINTS_FILTER_PARAMETERS, ParameterError, ParamSpec

__all__ = ['STEREO_PARAMETERS', 'STEREO_NAMES', 'STEREO_DYNAMIC', 'validate_stereo',
           'declare_stereo_parameters', 'stereo_config']

STEREO_PARAMETERS: Tuple[ParamSpec, ...] = (
    ParamSpec('checkpoint', '', 'RAFT-Stereo weights (raftstereo-NS.tar, raftstereo-realtime.pth, '
              ".safetensors); "
              "'' = the bundled default (realtime layout, trained on synthetic triplets)"),
    ParamSpec('device', 'cpu', 'torch device: cpu, cuda, cuda:N'),
    ParamSpec('backend', 'torch', 'inference backend', choices=('torch', 'auto', 'openvino', 'tensorrt')),
    ParamSpec('iterations', 12,
              'RAFT-Stereo GRU iterations: the latency/accuracy knob (official evaluation: 32)',
              low=1, high=64, dynamic=True),
    ParamSpec('max_width', 0, 'downscale the pair to at most this width before the network (0 = full size); '
              'disparity is scaled back to input pixels', low=0, high=8192),
    ParamSpec('min_disparity', 0.5, 'pixels; depth is NaN at or below it', low=0.0, high=1000.0,
              dynamic=True),
    ParamSpec('check_rectified', True, 'reject camera_infos whose R is not the identity'),
    ParamSpec('publish_points', True, 'publish the decimated point cloud on points'),
    ParamSpec('points_decimation', 4, 'keep every n-th pixel in x and y for points', low=1, high=64,
              dynamic=True),
    *POINTS_FILTER_PARAMETERS,
    ParamSpec('image_qos_reliability', 'best_effort', 'QoS reliability of the four inputs',
              choices=('best_effort', 'reliable', 'system_default')),
    ParamSpec('image_qos_depth', 5, 'QoS history depth of the four inputs', low=1, high=100),
    ParamSpec('pairing_queue_size', 10, 'messages per stream kept while waiting for exact-stamp partners',
              low=1, high=100),
    ParamSpec('diagnostics_period', 1.0, 'seconds between /diagnostics messages', low=0.1, high=60.0),
    ParamSpec('cpu_threads', 0, 'torch CPU threads (0 = torch default)', low=0, high=256),
    *MALLOC_PARAMETERS,
)
_BY_NAME = {p.name: p for p in STEREO_PARAMETERS}
STEREO_NAMES = frozenset(_BY_NAME)
STEREO_DYNAMIC = frozenset(p.name for p in STEREO_PARAMETERS if p.dynamic)


def validate_stereo(name: str, value: Any) -> Optional[str]:
    """Why ``value`` is not acceptable for stereo parameter ``name``, or None if it is."""
    p = _BY_NAME.get(name)
    if p is None:
        return f'unknown parameter {name!r}'
    if p.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not p.type:
        return f'{name} must be of type {p.type.__name__}, got {type(value).__name__} ({value!r})'
    if p.type is float and not math.isfinite(value):
        return f'{name} must be finite, got {value}'
    if p.low is not None and not p.low <= value <= p.high:
        return f'{name} must be in [{p.low:g}, {p.high:g}], got {value}'
    if p.choices and value not in p.choices:
        return f'{name} must be one of {", ".join(p.choices)}, got {value!r}'
    return None


def _descriptor(p: ParamSpec):
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    extra = ('one of: ' + ', '.join(p.choices) + '; ' if p.choices else '') + \
        ('changeable at run time' if p.dynamic else 'read-only after start')
    d = ParameterDescriptor(name=p.name, type=types[p.type], description=p.description,
                            additional_constraints=extra, read_only=not p.dynamic)
    if p.type is int and p.low is not None:
        d.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=0)]
    elif p.type is float and p.low is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(p.low), to_value=float(p.high),
                                                     step=0.0)]
    return d


def declare_stereo_parameters(node: Any) -> Dict[str, Any]:
    """Declare the table on ``node``; returns the validated values.

    Raises:
        ParameterError: naming the first invalid override.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    values: Dict[str, Any] = {}
    for p in STEREO_PARAMETERS:
        try:
            values[p.name] = node.declare_parameter(p.name, p.default, _descriptor(p)).value
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            raise ParameterError(f'parameter {p.name}: {exc}') from None
        reason = validate_stereo(p.name, values[p.name])
        if reason:
            raise ParameterError(reason)
    return values


def stereo_config(values: Dict[str, Any]):
    """The :class:`~dro_depth.stereo.StereoConfig` for validated ``values``."""
    from dro_depth.stereo import StereoConfig
    return StereoConfig(iterations=values['iterations'], max_width=values['max_width'],
                        min_disparity=values['min_disparity'], device=values['device'],
                        backend=values['backend'])
