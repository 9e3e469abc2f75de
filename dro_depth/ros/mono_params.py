"""Parameters of ``mono_depth_node``: one table for declarations, validation, config/mono_depth.yaml and the
launch file.

Imports no ROS package at import time. Reuses :class:`~dro_depth.ros.params.ParamSpec`,
:func:`~dro_depth.ros.params.check_value` and :func:`~dro_depth.ros.params.declare_parameters`.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

from .params import (MALLOC_PARAMETERS, POINTS_FILTER_PARAMETERS, ParameterError, ParamSpec, check_value,
                     declare_parameters)

__all__ = ['MONO_PARAMETERS', 'MONO_DYNAMIC', 'MONO_NAMES', 'validate_mono', 'validate_mono_all',
           'declare_mono_parameters', 'parse_hooks', 'mono_defaults']

_QOS = ('best_effort', 'reliable', 'system_default')

MONO_PARAMETERS: Tuple[ParamSpec, ...] = (
    # --- model
    ParamSpec('checkpoint', '', 'Depth Anything V2 weights (.pth / .pt / .safetensors, read weights-only); '
              'required: none are bundled (Small is Apache-2.0, Base/Large CC-BY-NC-4.0)'),
    ParamSpec('kind', 'auto', "'auto' = from the released file name (metric_hypersim / metric_vkitti -> "
              "metric, depth_anything_v2_vit* -> relative); 'metric' or 'relative' for other names (a "
              'contradiction with the name is refused at start)', choices=('auto', 'metric', 'relative')),
    ParamSpec('metric_max_depth', 0.0, 'metric checkpoints: metres of the sigmoid output 1; 0 = from the '
              'file name (hypersim 20, vkitti 80)', low=0.0, high=1e4),
    ParamSpec('encoder', 'auto', "'auto' = from the checkpoint's embedding width; a stated encoder that "
              'does not match is refused at start', choices=('auto', 'vits', 'vitb', 'vitl')),
    ParamSpec('model_depth', 0, 'transformer blocks of the checkpoint; 0 = counted from its tensors (reduced '
              'models load without setting it)', low=0, high=64, step=1),
    ParamSpec('hooks', '', "4 comma-separated hooked block indices, e.g. '2,5,8,11'; '' = the released ones "
              '(or the last block of each quarter for another block count)',
              constraint="'' or 4 comma-separated integers"),
    ParamSpec('input_size', 518, 'network input: lower bound of both sides, rounded to multiples of 14 '
              '(518 released; smaller is faster)', low=14, high=4096, step=1),
    ParamSpec('device', 'auto', "torch device: 'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:N'",
              constraint='auto | cpu | cuda | cuda:N'),
    ParamSpec('precision', 'fp32', 'fp32, or bf16 (autocast on CPU / CUDA; fast on CPUs with AMX)',
              choices=('fp32', 'bf16')),
    ParamSpec('backend', 'torch', "inference backend; 'auto' / 'openvino' / 'tensorrt' compile the network "
              'on the first frame of each network size (in the inference thread) and fall back to torch with '
              'a warning', choices=('torch', 'auto', 'openvino', 'tensorrt')),
    ParamSpec('backend_threads', 0, 'CPU threads of a compiled engine; 0 = all cores', low=0, high=256,
              step=1),
    ParamSpec('engine_cache', '', "folder for compiled engines, reused across starts; '' = none"),
    ParamSpec('cpu_threads', 0, "torch intra-op threads; 0 = torch's default (1 is faster on small shared "
              'CPUs)',
              low=0, high=256, step=1),
    # --- outputs
    ParamSpec('min_depth', 0.0, 'metres; metric depth at or below is published as NaN (run-time)',
              low=0.0, high=1e4, dynamic=True, constraint='min_depth < max_depth'),
    ParamSpec('max_depth', 80.0, 'metres; metric depth at or above is published as NaN (run-time)',
              low=1e-3, high=1e4, dynamic=True, constraint='min_depth < max_depth'),
    ParamSpec('publish_relative_depth', True, 'publish relative_depth (run-time); always on for relative '
              'checkpoints, for metric ones it is 1 / depth', dynamic=True),
    ParamSpec('camera_frame', '', "optical frame of the outputs; '' = the input image's header.frame_id"),
    ParamSpec('publish_points', True, 'publish the filtered metric cloud on points (metric checkpoints only; '
              'run-time)', dynamic=True),
    ParamSpec('points_decimation', 4, 'keep every n-th pixel in x and y for points (run-time)', low=1,
              high=64, step=1, dynamic=True),
    ParamSpec('points_min_confidence', 0.0, 'points: drop pixels whose flip-consistency confidence is below; '
              '0 = off (no second pass). Above 0 the network also runs on the mirrored image (twice the '
              'time) and confidence = exp(-|d - d_mirrored| / d / 0.1) (run-time)',
              low=0.0, high=1.0, dynamic=True),
    *POINTS_FILTER_PARAMETERS,
    ParamSpec('output_qos_depth', 5, 'history depth of the published topics', low=1, high=100, step=1),
    # --- inputs
    ParamSpec('image_qos_reliability', 'best_effort', 'reliability of the image and camera_info '
              'subscriptions (sensor data QoS by default)', choices=_QOS),
    ParamSpec('image_qos_depth', 5, 'history depth of the image and camera_info subscriptions', low=1,
              high=100, step=1),
    ParamSpec('camera_info_mode', 'exact', "'exact' = CameraInfo with the same stamp; 'latest' = the newest "
              "CameraInfo; 'latched' = a transient-local CameraInfo sent once", choices=('exact', 'latest',
                                                                                          'latched')),
    ParamSpec('pairing_queue_size', 10, 'images and camera infos kept while waiting for their partner', low=1,
              high=1000, step=1),
    ParamSpec('max_input_pixels', 3840 * 2160, "images with more pixels are dropped before any copy, counted "
              "as 'too_large'", low=256, high=2 ** 31 - 1, step=1),
    ParamSpec('input_rectified', True, 'the image is rectified: points use CameraInfo P[:, :3]; false = K'),
    ParamSpec('diagnostics_period', 1.0, 'seconds between /diagnostics messages', low=0.1, high=60.0),
    *MALLOC_PARAMETERS,
)
_BY_NAME = {p.name: p for p in MONO_PARAMETERS}
MONO_NAMES = frozenset(_BY_NAME)
MONO_DYNAMIC = frozenset(p.name for p in MONO_PARAMETERS if p.dynamic)


def mono_defaults() -> Dict[str, Any]:
    """Name -> default value, in declaration order."""
    return {p.name: p.default for p in MONO_PARAMETERS}


def parse_hooks(text: str) -> Tuple[int, ...]:
    """``'2,5,8,11'`` -> ``(2, 5, 8, 11)``; ``''`` -> ``()``.

    Raises:
        ParameterError: not 4 comma-separated non-negative integers.
    """
    if not text.strip():
        return ()
    try:
        hooks = tuple(int(h) for h in text.split(','))
    except ValueError:
        hooks = ()
    if len(hooks) != 4 or min(hooks) < 0:
        raise ParameterError(f"hooks must be '' or 4 comma-separated block indices like '2,5,8,11', got "
                             f'{text!r}')
    return hooks


def validate_mono(name: str, value: Any) -> Optional[str]:
    """Why ``value`` is not acceptable for mono parameter ``name``, or None if it is."""
    p = _BY_NAME.get(name)
    if p is None:
        return f'unknown parameter {name!r}'
    reason = check_value(p, value)
    if reason is None and name == 'hooks':
        try:
            parse_hooks(value)
        except ParameterError as exc:
            return str(exc)
    return reason


def validate_mono_all(values: Mapping[str, Any]) -> None:
    """Check every value and the rules between them.

    Raises:
        ParameterError: naming the first invalid parameter.
    """
    for name, value in values.items():
        reason = validate_mono(name, value)
        if reason:
            raise ParameterError(reason)
    for lo, hi in (('min_depth', 'max_depth'), ('points_min_range', 'points_max_range')):
        a, b = values.get(lo, _BY_NAME[lo].default), values.get(hi, _BY_NAME[hi].default)
        if not a < b:
            raise ParameterError(f'{lo} ({a}) must be smaller than {hi} ({b})')


def declare_mono_parameters(node: Any) -> Dict[str, Any]:
    """Declare the table on ``node``; returns the validated values.

    Raises:
        ParameterError: naming the first invalid override.
    """
    return declare_parameters(node, MONO_PARAMETERS, check=validate_mono_all)
