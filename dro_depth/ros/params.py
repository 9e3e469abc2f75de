"""The node's parameters: one table that declarations, validation, config/sfm.yaml and the launch file
all follow.

This module imports no ROS package at import time, so the launch-file test (and tools) can read the
table without a ROS runtime. :func:`declare_parameters` builds ``rcl_interfaces`` descriptors with
ranges (``IntegerRange`` / ``FloatingPointRange``), and read-only flags for everything that cannot change
while the node runs. Changing a run-time parameter goes through :func:`validate` as well, so
``ros2 param set /sfm_node iterations 100`` is rejected with a reason.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple

from dro_depth.errors import DroDepthError

__all__ = ['ParamSpec', 'PARAMETERS', 'POINTS_FILTER_PARAMETERS', 'MALLOC_PARAMETERS', 'PARAMETER_NAMES',
           'DYNAMIC_PARAMETERS', 'ParameterError', 'spec', 'check_value', 'validate', 'validate_all', 'defaults',
           'declare_parameters', 'parameter_updates', 'estimator_config']


class ParameterError(DroDepthError):
    """A parameter value is invalid; the message names the parameter and the rule."""


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter.

    Attributes:
        name: parameter name (also the YAML key under ``sfm_node: ros__parameters:``).
        default: default value; its Python type is the parameter's type.
        description: shown by ``ros2 param describe``.
        low, high: inclusive numeric range (integer or floating-point range in the descriptor).
        step: integer step of the range (``value = low + k * step``); 0 = any.
        choices: allowed string values (checked by :func:`validate`, listed in the descriptor).
        dynamic: may be changed while the node runs (``ros2 param set``); all others are read-only.
        constraint: extra rule in words (descriptor's ``additional_constraints``).
    """

    name: str
    default: Any
    description: str
    low: Optional[float] = None
    high: Optional[float] = None
    step: int = 0
    choices: Tuple[str, ...] = ()
    dynamic: bool = False
    constraint: str = ''

    @property
    def type(self) -> type:
        return type(self.default)


_DEVICE_RE = re.compile(r'^(auto|cpu|cuda(:\d+)?|mps|xpu(:\d+)?)$')

#: The point-cloud filter's run-time settings, as stereo_node and mono_depth_node declare them.
POINTS_FILTER_PARAMETERS: Tuple[ParamSpec, ...] = (
    ParamSpec('points_min_range', 0.1, 'points: drop points nearer than this, metres (run-time)', low=0.0,
              high=1e4, dynamic=True, constraint='points_min_range < points_max_range'),
    ParamSpec('points_max_range', 10.0, 'points: drop points farther than this, metres (run-time)', low=0.01,
              high=1e4, dynamic=True, constraint='points_min_range < points_max_range'),
    ParamSpec('points_edge_threshold', 0.05, 'points: drop flying pixels whose relative depth jump to a '
              'neighbour exceeds this; 0 = off (run-time)', low=0.0, high=10.0, dynamic=True),
)

#: glibc malloc settings every node applies at start (see :mod:`dro_depth.ros.memory`); shared by the
#: sfm, stereo and mono tables.
MALLOC_PARAMETERS: Tuple[ParamSpec, ...] = (
    ParamSpec('malloc_mmap_threshold', 1 << 20, 'bytes: buffers at least this large are mmapped and given '
              'back to the OS when freed (fixed, so glibc does not raise it after a large frame); 0 = '
              "glibc's dynamic threshold", low=0, high=1 << 30, step=1),
    ParamSpec('malloc_arena_max', 0, "most glibc malloc arenas; 0 = glibc's default (8 per core)",
              low=0, high=1024, step=1),
    ParamSpec('malloc_trim_period', 10.0, 'seconds between malloc_trim calls that return freed memory to '
              'the OS (also right after a frame above 1920x1080); 0 = only after such frames',
              low=0.0, high=3600.0),
)

PARAMETERS: Tuple[ParamSpec, ...] = (
    # --- model / estimator
    ParamSpec('checkpoint', '', "DRO checkpoint (.safetensors or weights-only .pt); '' = the bundled default "
              'model, or random (UNTRAINED) weights while the package ships none'),
    ParamSpec('device', 'auto', "torch device: 'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:N'",
              constraint="auto | cpu | cuda | cuda:N"),
    ParamSpec('precision', 'fp32', 'DRO inference precision: torch fp16/bf16 = autocast on CUDA only; '
              'openvino fp32 | bf16 (bf16 is fast on CPUs with AVX512-BF16 / AMX); tensorrt fp32 | fp16 | '
              'bf16',
              choices=('fp32', 'fp16', 'bf16')),
    ParamSpec('backend', 'auto', "DRO inference backend: 'auto' = TensorRT on CUDA when installed (else "
              'torch), OpenVINO on CPU when installed (else torch); engines compile in the background while '
              'torch serves, and a backend that is missing or fails falls back to torch with a reason in '
              '/diagnostics',
              choices=('auto', 'torch', 'openvino', 'tensorrt')),
    ParamSpec('backend_threads', 0, 'CPU threads of the compiled DRO engine (OpenVINO); 0 = all cores',
              low=0, high=256, step=1),
    ParamSpec('engine_cache', '', "folder for compiled engines (DRO and metric), reused across starts; '' = "
              'compile at every start. Engines are only ever loaded from this folder'),
    ParamSpec('cpu_threads', 0, "torch intra-op threads for CPU inference; 0 = torch's default (one per "
              'core). On a small shared CPU, 1 avoids spinning threads fighting the executor and camera '
              'drivers',
              low=0, high=256, step=1),
    ParamSpec('width', 128, 'network input width in pixels (images are resized; outputs keep the input size)',
              low=32, high=2048, step=16),
    ParamSpec('height', 96, 'network input height in pixels', low=32, high=2048, step=16),
    ParamSpec('iterations', 4, 'DRO update iterations per frame: the latency / accuracy knob (run-time)',
              low=0, high=64, step=1, dynamic=True),
    ParamSpec('num_refs', 2, 'reference keyframes per update (run-time; a smaller value drops the oldest)',
              low=1, high=8, step=1, dynamic=True),
    ParamSpec('keyframe_baseline_ratio', 0.02, 'translation / median depth since the newest keyframe that '
              'makes a new keyframe', low=1e-4, high=1.0),
    ParamSpec('keyframe_rotation_deg', 3.0, 'rotation since the newest keyframe that makes a new keyframe',
              low=0.01, high=90.0),
    ParamSpec('keyframe_max_interval', 1.0, 'seconds after which a moving camera makes a keyframe anyway',
              low=0.01, high=60.0),
    ParamSpec('static_baseline_ratio', 0.003, 'baseline / median depth below which the camera counts as '
              'static (translation held)', low=1e-6, high=1.0),
    ParamSpec('max_time_gap', 2.0, 'seconds between frames above which the reference window is reset',
              low=0.01, high=3600.0),
    ParamSpec('max_step_ratio', 1.0, 'per-frame translation / median depth above which a pose is rejected '
              '(tracking LOST)', low=1e-3, high=100.0),
    ParamSpec('max_step_rotation_deg', 45.0, 'per-frame rotation above which a pose is rejected',
              low=0.1, high=180.0),
    ParamSpec('min_depth', 0.1, 'metres; depth below is published as NaN (with metric.enabled: applied after '
              'scaling)', low=1e-3, high=1e4,
              constraint='min_depth < max_depth'),
    ParamSpec('max_depth', 80.0, 'metres; depth above is published as NaN (with metric.enabled: applied '
              'after scaling)', low=1e-3, high=1e4,
              constraint='min_depth < max_depth'),
    # --- metric depth and scale
    ParamSpec('metric.enabled', True, 'run the metric-depth model in its own thread, publish metric_depth '
              'and make depth, pose and odom metric once the scale is known (off: DRO units throughout)'),
    ParamSpec('metric.checkpoint', '', "metric model: a light model from 'dro-depth train' or a released "
              "ZoeD_M12_{N,K,NK} file (.pt / .safetensors); '' = the bundled light model"),
    ParamSpec('metric.backbone', 'auto', "'auto' = as the checkpoint says; 'light' or 'beit' to insist; "
              "'depth_anything' = Depth Anything V2 metric (metric.da_indoor / metric.da_outdoor)",
              choices=('auto', 'light', 'beit', 'depth_anything')),
    ParamSpec('metric.da_indoor', '', "Depth Anything V2 metric Hypersim checkpoint (indoor, 20 m), "
              "with metric.backbone depth_anything; '' = none"),
    ParamSpec('metric.da_outdoor', '', "Depth Anything V2 metric Virtual KITTI checkpoint (outdoor, 80 m), "
              "with metric.backbone depth_anything; '' = none; both set = routed per frame"),
    ParamSpec('metric.da_encoder', 'vits', 'Depth Anything V2 encoder of both checkpoints',
              choices=('vits', 'vitb', 'vitl')),
    ParamSpec('metric.da_input_size', 518, 'Depth Anything V2 network input: lower bound of both sides '
              '(multiples of 14; smaller is faster)', low=14, high=4096, step=1),
    ParamSpec('metric.domain', 'auto', "metric head: 'auto' = the router's choice with hysteresis, or force "
              "'indoor' (NYU head) / 'outdoor' (KITTI head) (run-time)",
              choices=('auto', 'indoor', 'outdoor'), dynamic=True),
    ParamSpec('metric.rate', 0, 'run the metric model on every n-th processed frame; 0 = on keyframes only '
              '(run-time). A busy metric thread skips frames, never DRO',
              low=0, high=1000, step=1, dynamic=True),
    ParamSpec('metric.resolution', '', "metric network size 'HxW' (multiples of 32, aspect kept); '' = the "
              "model's own (light 192x256, ZoeDepth 384x512)", constraint="'HxW' or empty"),
    ParamSpec('metric.precision', 'fp32', 'metric backbone precision (the metric head stays fp32); fp16 '
              'needs CUDA, bf16 is fast on CPUs with AMX', choices=('fp32', 'bf16', 'fp16')),
    ParamSpec('metric.backend', 'auto', "metric model backend (as 'backend'; a compiled backend runs the "
              "whole model with metric.precision)", choices=('auto', 'torch', 'openvino', 'tensorrt')),
    ParamSpec('metric.threads', 1, 'CPU threads of the compiled metric engine (its own budget beside DRO); '
              '0 = all cores', low=0, high=256, step=1),
    # --- frames
    ParamSpec('odom_frame', 'odom', 'frame of pose, odom, path and the TF parent (REP 105)',
              constraint='non-empty'),
    ParamSpec('base_frame', 'base_link', 'odometry child frame (REP 105)', constraint='non-empty'),
    ParamSpec('camera_frame', '', "optical frame of the camera; '' = the input image's header.frame_id"),
    # --- inputs
    ParamSpec('image_qos_reliability', 'best_effort', 'reliability of the image and camera_info '
              'subscriptions (sensor data QoS by default)',
              choices=('best_effort', 'reliable', 'system_default')),
    ParamSpec('image_qos_depth', 5, 'history depth of the image and camera_info subscriptions',
              low=1, high=100, step=1),
    ParamSpec('camera_info_mode', 'exact', "how images find their CameraInfo: 'exact' = same stamp "
              "(message_filters ExactTime, as image_pipeline); 'latest' = the newest CameraInfo (a driver "
              "whose stamps differ); 'latched' = the newest CameraInfo from a transient-local publisher that "
              'sends it once', choices=('exact', 'latest', 'latched')),
    ParamSpec('pairing_queue_size', 10, 'images and camera infos kept while waiting for their partner',
              low=1, high=1000, step=1),
    ParamSpec('max_input_pixels', 3840 * 2160, 'images with more pixels (width x height) are dropped '
              "before any copy, counted as 'too_large' (default: 4K UHD, sized for a 24 GiB CPU machine)",
              low=256, high=2 ** 31 - 1, step=1),
    ParamSpec('input_rectified', True, 'the image is rectified (image_rect): intrinsics from CameraInfo '
              'P[:, :3], as image_geometry; false = an undistorted raw pipeline described by K'),
    # --- outputs
    ParamSpec('publish_tf', True, 'broadcast odom -> base_frame (or odom -> camera frame when base -> camera '
              'is not in TF); disable when another node owns that transform (REP 105)'),
    ParamSpec('publish_points', False, 'publish the coloured point cloud on points (run-time)', dynamic=True),
    ParamSpec('points_decimation', 4, 'keep every n-th pixel (in x and y) in the point cloud (run-time)',
              low=1, high=64, step=1, dynamic=True),
    ParamSpec('points_min_confidence', 0.5, 'cloud: drop pixels whose confidence is below (run-time; see '
              'README Use with Nav2 for the measurement)', low=0.0, high=1.0, dynamic=True),
    ParamSpec('points_min_range', 0.1, 'cloud: drop points nearer than this, metres from the optical centre '
              '(run-time)', low=0.0, high=1e4, dynamic=True,
              constraint='points_min_range < points_max_range'),
    ParamSpec('points_max_range', 10.0, 'cloud: drop points farther than this, metres (run-time)',
              low=0.01, high=1e4, dynamic=True, constraint='points_min_range < points_max_range'),
    ParamSpec('points_edge_threshold', 0.05, 'cloud: drop flying pixels whose relative depth jump to a '
              'neighbour exceeds this; 0 = off (run-time)', low=0.0, high=10.0, dynamic=True),
    ParamSpec('points_allow_unscaled', False, 'cloud: also publish while the scale regime is not metric '
              '(DRO units or converging); off keeps a voxel layer from ever receiving DRO units (run-time)',
              dynamic=True),
    ParamSpec('publish_path', True, 'publish the trajectory on path (run-time)', dynamic=True),
    ParamSpec('path_max_length', 1000, 'poses kept in the published path', low=1, high=100000, step=1),
    ParamSpec('publish_confidence', True, 'publish the confidence image (run-time)', dynamic=True),
    ParamSpec('output_qos_depth', 5, 'history depth of the published topics', low=1, high=100, step=1),
    ParamSpec('diagnostics_period', 1.0, 'seconds between /diagnostics messages', low=0.1, high=60.0),
    # --- memory (glibc malloc; ignored elsewhere)
    *MALLOC_PARAMETERS,
)

#: The estimator's depth limits (DRO units) while the metric branch is on.
METRIC_DRO_DEPTH_RANGE = (1e-4, 1e5)

_BY_NAME: Dict[str, ParamSpec] = {p.name: p for p in PARAMETERS}
PARAMETER_NAMES = frozenset(_BY_NAME)
DYNAMIC_PARAMETERS = frozenset(p.name for p in PARAMETERS if p.dynamic)
# Parameters every rclpy node has (declared by rclpy itself).
BUILTIN_PARAMETERS = frozenset({'use_sim_time', 'start_type_description_service'})


def spec(name: str) -> ParamSpec:
    """The :class:`ParamSpec` of ``name``; KeyError names the known parameters."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f'unknown parameter {name!r}; known: {", ".join(sorted(_BY_NAME))}') from None


def defaults() -> Dict[str, Any]:
    """Name -> default value, in declaration order."""
    return {p.name: p.default for p in PARAMETERS}


def parameter_updates(params: Iterable[Any], names: Iterable[str], dynamic: Iterable[str],
                      check: Callable[[str, Any], Optional[str]]) -> Tuple[Dict[str, Any], str]:
    """A node's run-time parameter change, as its set-parameters callback sees it.

    Args:
        params: the changed ``rclpy.parameter.Parameter`` objects (``.name``, ``.value``).
        names: the node's own parameters; others (``use_sim_time`` and the rest of rclpy's) are ignored.
        dynamic: those of ``names`` that may change after start.
        check: ``check(name, value)`` -> why the value is refused, or None.

    Returns:
        ``(updates, '')`` with ``{name: value}`` of the node's parameters, or ``({}, reason)`` for the first
        refused one (read-only after start, or an invalid value): the whole change is refused.
    """
    names, dynamic = frozenset(names), frozenset(dynamic)
    updates: Dict[str, Any] = {}
    for p in params:
        if p.name not in names:
            continue
        if p.name not in dynamic:
            return {}, f'{p.name} is read-only after start'
        reason = check(p.name, p.value)
        if reason:
            return {}, reason
        updates[p.name] = p.value
    return updates, ''


def validate(name: str, value: Any) -> Optional[str]:
    """Why ``value`` is not acceptable for parameter ``name``, or None if it is."""
    if name not in _BY_NAME:
        return f'unknown parameter {name!r}'
    reason = check_value(_BY_NAME[name], value)
    if reason is None and name == 'metric.resolution':
        from dro_depth.metric.depth_estimator import parse_resolution
        try:
            parse_resolution(value)
        except ValueError as exc:
            return f'{name}: {exc}'
    return reason


def check_value(p: ParamSpec, value: Any) -> Optional[str]:
    """Why ``value`` breaks ``p``'s own rules (type, finite, range, step, choices, device, non-empty), or
    None.

    Every node's parameter table uses this; rules between parameters are each table's own.
    """
    name = p.name
    if p.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not p.type:
        return f'{name} must be of type {p.type.__name__}, got {type(value).__name__} ({value!r})'
    if p.type is float and not math.isfinite(value):
        return f'{name} must be finite, got {value}'
    if p.low is not None and p.high is not None and p.type in (int, float):
        if not p.low <= value <= p.high:
            return f'{name} must be in [{p.low:g}, {p.high:g}], got {value}'
        if p.step and (value - p.low) % p.step:
            return f'{name} must be {p.low:g} + a multiple of {p.step}, got {value}'
    if p.choices and value not in p.choices:
        return f'{name} must be one of {", ".join(p.choices)}, got {value!r}'
    if name == 'device' and not _DEVICE_RE.match(value):
        return f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}"
    if p.constraint == 'non-empty' and not value.strip():
        return f'{name} must not be empty'
    return None


def validate_all(values: Mapping[str, Any]) -> None:
    """Check every value and the rules between them.

    Raises:
        ParameterError: naming the first invalid parameter.
    """
    for name, value in values.items():
        reason = validate(name, value)
        if reason:
            raise ParameterError(reason)
    lo, hi = values.get('min_depth', _BY_NAME['min_depth'].default), values.get('max_depth',
                                                                             _BY_NAME['max_depth'].default)
    if not lo < hi:
        raise ParameterError(f'min_depth ({lo}) must be smaller than max_depth ({hi})')


def _descriptor(p: ParamSpec):
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    constraints = []
    if p.choices:
        constraints.append('one of: ' + ', '.join(p.choices))
    if p.constraint:
        constraints.append(p.constraint)
    constraints.append('changeable at run time' if p.dynamic else 'read-only after start')
    d = ParameterDescriptor(name=p.name, type=types[p.type], description=p.description,
                            additional_constraints='; '.join(constraints), read_only=not p.dynamic)
    if p.type is int and p.low is not None:
        d.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=int(p.step))]
    elif p.type is float and p.low is not None:
        d.floating_point_range = [
            FloatingPointRange(from_value=float(p.low), to_value=float(p.high), step=0.0)]
    return d


def declare_parameters(node: Any, specs: Iterable[ParamSpec] = PARAMETERS,
                       check: Callable[[Mapping[str, Any]], None] = validate_all) -> Dict[str, Any]:
    """Declare every parameter on an ``rclpy`` node and return the validated values.

    Values come from the defaults, overridden by ``--params-file`` / ``-p`` / launch overrides. ``check``
    validates them all (another node's table passes its own ``validate_all``).

    Raises:
        ParameterError: an override has the wrong type, is out of range, or breaks a rule.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    values: Dict[str, Any] = {}
    for p in specs:
        try:
            param = node.declare_parameter(p.name, p.default, _descriptor(p))
        except InvalidParameterTypeException as exc:
            raise ParameterError(f'parameter {p.name} must be of type {p.type.__name__}: {exc}') from None
        except InvalidParameterValueException as exc:
            raise ParameterError(f'parameter {p.name}: {exc}') from None
        values[p.name] = param.value
    check(values)
    return values


def estimator_config(values: Mapping[str, Any]):
    """The :class:`~dro_depth.sfm.estimator.EstimatorConfig` for validated parameter ``values``."""
    from dro_depth.sfm.estimator import EstimatorConfig

    return EstimatorConfig(
        checkpoint=values['checkpoint'] or None, device=values['device'], precision=values['precision'],
        backend=values['backend'], backend_threads=values['backend_threads'],
        engine_cache=values['engine_cache'] or None,
        width=values['width'], height=values['height'], iterations=values['iterations'],
        num_refs=values['num_refs'], keyframe_baseline_ratio=values['keyframe_baseline_ratio'],
        keyframe_rotation_deg=values['keyframe_rotation_deg'],
        keyframe_max_interval=values['keyframe_max_interval'],
        static_baseline_ratio=values['static_baseline_ratio'], max_time_gap=values['max_time_gap'],
        max_step_ratio=values['max_step_ratio'], max_step_rotation_deg=values['max_step_rotation_deg'],
        max_input_pixels=values['max_input_pixels'],
        # With the metric branch on, min/max_depth apply in metres after scaling (MetricScaler); the
        # estimator's own limits act in DRO units and would cut valid depth, so they are opened up.
        min_depth=METRIC_DRO_DEPTH_RANGE[0] if values.get('metric.enabled') else values['min_depth'],
        max_depth=METRIC_DRO_DEPTH_RANGE[1] if values.get('metric.enabled') else values['max_depth'])
