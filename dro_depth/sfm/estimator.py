"""Streaming structure-from-motion: one frame in, depth and pose out.

:class:`SfmEstimator` is the pure core that the ROS node (and the offline evaluator) call frame by frame,
in the spirit of DROID-SLAM's streaming ``track()``:

    est = SfmEstimator(EstimatorConfig(iterations=8))
    for image, K, stamp in frames:
        result = est.track(image, K, stamp)     # FrameResult: depth (m), confidence, pose, covariance

It owns the reference window (keyframes), chains DRO's relative poses into one trajectory, resizes
images to the network resolution (with K rescaled), and turns bad input into specific errors or
resets with a reason. It never imports rclpy.

World frame: the optical frame of the first camera pose (x right, y down, z forward). After a reset
the trajectory continues from the last pose, so odometry never jumps.
"""
from __future__ import annotations

import enum
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dro_depth.device import resolve_device
from dro_depth.geometry import PinholeCamera, pose_vec_to_matrix, rotation_angle, translation_norm, validate_intrinsics
from dro_depth.errors import ConfigError
from .errors import DuplicateStampError, InputError, StampError
from .stamps import StampOrder, as_stamp_ns
from .window import Keyframe, KeyframePolicy, KeyframeWindow

__all__ = ['DuplicateStampError', 'EstimatorConfig', 'FrameResult', 'InputError', 'SfmEstimator',
           'StampError', 'TrackingState', 'PRECISIONS']

logger = logging.getLogger(__name__)

PRECISIONS = ('fp32', 'fp16', 'bf16')
MIN_IMAGE_SIDE = 16                  # pixels: smaller images are refused
_AUTOCAST_DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}


class TrackingState(str, enum.Enum):
    """What the estimator could do with the latest frame."""

    INITIALIZING = 'initializing'   # no reference frame yet: single-view depth, pose held
    TRACKING = 'tracking'           # multi-view depth and a pose from DRO
    STATIC = 'static'               # baseline too small for structure: translation held at zero
    LOST = 'lost'                   # the network's answer was rejected; the window was reset


@dataclass
class EstimatorConfig:
    """Settings of :class:`SfmEstimator` (the ROS parameters map onto these one to one)."""

    checkpoint: Optional[str] = None     # None: the bundled default model, else random (untrained) weights
    device: str = 'auto'
    precision: str = 'fp32'              # torch: fp16 / bf16 autocast on CUDA only; openvino: fp32 | bf16;
                                         # tensorrt: fp32 | fp16 | bf16
    backend: str = 'torch'               # 'auto' | 'torch' | 'openvino' | 'tensorrt' (dro_depth.backends)
    backend_threads: int = 0             # CPU threads of the compiled engine; 0 = all cores
    engine_cache: Optional[str] = None   # folder for compiled engines; None = compile every start
    width: int = 128                     # network input size, multiples of 16 (the bundled model's)
    height: int = 96
    iterations: int = 4                  # DRO update steps: the latency/accuracy knob (12 for released
                                         # checkpoints; 4 is the bundled model's best)
    num_refs: int = 2                    # reference (key)frames per update
    keyframe_baseline_ratio: float = 0.02
    keyframe_rotation_deg: float = 3.0
    keyframe_max_interval: float = 1.0   # s
    static_baseline_ratio: float = 0.003  # translation / median depth below which the camera is static
    max_time_gap: float = 2.0            # s; a larger gap between frames resets the window
    max_step_ratio: float = 1.0          # a per-frame translation above this x median depth is rejected
    max_step_rotation_deg: float = 45.0  # a per-frame rotation above this is rejected
    min_depth: float = 0.1               # m; depth outside [min_depth, max_depth] is NaN
    max_depth: float = 80.0
    max_input_pixels: int = 3840 * 2160  # larger input images are refused (InputError) before any copy

    def validate(self) -> None:
        """Raise ConfigError (a DroDepthError) naming the first invalid setting."""
        if self.precision not in PRECISIONS:
            raise ConfigError(f'precision must be one of {PRECISIONS}, got {self.precision!r}')
        from dro_depth.backends import BACKENDS
        if self.backend not in BACKENDS:
            raise ConfigError(f'backend must be one of {BACKENDS}, got {self.backend!r}')
        for name in ('width', 'height'):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 32 or value % 16:
                raise ConfigError(f'{name} must be a multiple of 16 and >= 32, got {value!r}')
        if not isinstance(self.iterations, int) or not 0 <= self.iterations <= 64:
            raise ConfigError(f'iterations must be an integer in [0, 64], got {self.iterations!r}')
        if not isinstance(self.num_refs, int) or not 1 <= self.num_refs <= 8:
            raise ConfigError(f'num_refs must be an integer in [1, 8], got {self.num_refs!r}')
        for name in ('keyframe_baseline_ratio', 'keyframe_rotation_deg', 'keyframe_max_interval',
                     'static_baseline_ratio', 'max_time_gap', 'max_step_ratio', 'max_step_rotation_deg'):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f'{name} must be finite and > 0, got {value!r}')
        if not (0 < self.min_depth < self.max_depth) or not math.isfinite(self.max_depth):
            raise ConfigError(f'need 0 < min_depth < max_depth < inf, got {self.min_depth}, {self.max_depth}')
        if not isinstance(self.max_input_pixels, int) or self.max_input_pixels < 256:
            raise ConfigError(f'max_input_pixels must be an integer >= 256, got {self.max_input_pixels!r}')


@dataclass
class FrameResult:
    """The estimator's answer for one frame.

    Attributes:
        stamp: the input stamp in seconds (as given, or ``stamp_ns * 1e-9``).
        depth: float32 [H, W] at the input resolution, metres along optical z, NaN where invalid.
        confidence: float32 [H, W] in [0, 1] (0 where depth is invalid).
        T_world_cam: float64 [4, 4], camera (optical frame) pose in the world (odometry) frame.
        covariance: float64 [6, 6] of the pose in the world frame, ROS order (x, y, z, rot x, rot y, rot z).
        state: tracking state for this frame; ``reason`` says why when it is not TRACKING.
        is_keyframe: the frame was added to the reference window.
        reset: the window was reset before (or because of) this frame.
        timings: milliseconds per stage (preprocess, features, context, init, gru_stage_k, upsample,
            postprocess, total).
        baseline_ratio: translation to the newest reference divided by the median depth.
        camera: the input camera (intrinsics at the input resolution).
        stamp_ns: the stamp as exact integer nanoseconds (what ordering and duplicates are judged on).
    """

    stamp: float
    depth: np.ndarray
    confidence: np.ndarray
    T_world_cam: np.ndarray
    covariance: np.ndarray
    state: TrackingState
    reason: str = ''
    is_keyframe: bool = False
    reset: bool = False
    timings: Dict[str, float] = field(default_factory=dict)
    iterations: int = 0
    num_refs: int = 0
    baseline_ratio: float = float('nan')
    camera: Optional[PinholeCamera] = None
    stamp_ns: int = -1


# Per-frame pose noise model (1 sigma): a floor plus a part proportional to the motion. The
# disagreement between references, when there are several, is added on top.
_SIGMA_T_FLOOR = 0.002      # m (in the estimator's units)
_SIGMA_T_REL = 0.05         # of the per-frame translation
_SIGMA_R_FLOOR = math.radians(0.05)
_SIGMA_R_REL = 0.05         # of the per-frame rotation angle
LOST_COVARIANCE = 1e6


@dataclass
class _Frame:
    """One checked input frame at network size (internal to :meth:`SfmEstimator.track`)."""

    stamp: float
    stamp_ns: int                         # exact; ordering and duplicates are judged on it
    camera: PinholeCamera                 # the input camera (input resolution)
    target: torch.Tensor                  # float32 (3, h, w) in [0, 1], network resolution
    K_net: torch.Tensor                   # float32 (1, 3, 3), network resolution
    refs_kf: list                         # the reference keyframes, newest first
    timings: Dict[str, float]
    t_start: float

    @property
    def first(self) -> bool:
        return not self.refs_kf


@dataclass
class _NetOutput:
    """The network's answer for one frame (internal)."""

    inv_depth: torch.Tensor               # float32 (h, w), network resolution
    confidence: torch.Tensor              # float32 (h, w) in [0, 1]
    poses: np.ndarray                     # float64 (N, 6) pose vectors T_ref_tgt
    iterations: int
    t_post: float


@dataclass
class _Motion:
    """The tracking decision for one frame (internal)."""

    state: TrackingState
    reason: str
    T_world_cam: np.ndarray
    median_depth: float
    reset_reason: str
    baseline_ratio: float = float('nan')
    step_cov: np.ndarray = field(default_factory=lambda: np.zeros((6, 6)))
    covariance: np.ndarray = field(default_factory=lambda: np.zeros((6, 6)))


class SfmEstimator:
    """Streaming monocular depth and pose estimation with DRO.

    Args:
        config: settings; validated on construction.
        model: an already built DRO model (e.g. for tests or training); overrides ``config.checkpoint``.
    """

    def __init__(self, config: EstimatorConfig | None = None, model: Optional[torch.nn.Module] = None) -> None:
        self.config = config or EstimatorConfig()
        self.config.validate()
        self.device = resolve_device(self.config.device)
        self.precision = self.config.precision
        self.untrained = False
        self.checkpoint: Optional[Path] = None
        if model is None:
            model = self._load_model(self.config.checkpoint)
        self.model = model.to(self.device).eval()
        self.engines = self._engine_pool()
        if self.precision != 'fp32' and self.device.type != 'cuda' and not self.engines.compiles:
            logger.warning('precision %s needs CUDA with torch; running fp32 on %s', self.precision,
                           self.device)
            self.precision = 'fp32'
        self.window = KeyframeWindow(self.config.num_refs, KeyframePolicy(
            min_baseline_ratio=self.config.keyframe_baseline_ratio,
            min_rotation_deg=self.config.keyframe_rotation_deg,
            max_interval=self.config.keyframe_max_interval))
        self._iterations = self.config.iterations
        self._T_world_cam = np.eye(4)
        self._covariance = np.zeros((6, 6))
        self._stamps = StampOrder(int(round(self.config.max_time_gap * 1e9)))
        self._camera: Optional[PinholeCamera] = None
        self._net_camera: Optional[PinholeCamera] = None
        self._frame_index = 0
        self._pending_reset = ''

    # ------------------------------------------------------------------ set-up
    def _engine_pool(self):
        """Compiled DRO engines for ``config.backend`` (torch serves while they compile, or after a
        fallback)."""
        from dro_depth.backends import DROEnginePool, resolve_backend

        cfg = self.config
        backend = resolve_backend(cfg.backend, self.device)
        precision = cfg.precision
        if backend == 'openvino' and precision == 'fp16':
            logger.warning('OpenVINO has no fp16 on CPU here; DRO runs bf16')
            precision = 'bf16'
        pool = DROEnginePool(self.model, backend=backend, precision=precision, height=cfg.height,
                             width=cfg.width, device=self.device, threads=cfg.backend_threads,
                             cache_dir=cfg.engine_cache)
        pool.requested = cfg.backend
        pool.prepare(cfg.num_refs, cfg.iterations)
        return pool

    def close(self, timeout: float = 60.0) -> bool:
        """Stop background engine compiles (waits, bounded, for one in progress); call before exiting."""
        return self.engines.close(timeout)

    def diagnostics(self) -> Dict[str, Any]:
        """Which DRO engine serves (backend, precision), what is compiling, compile times, fallback reason."""
        return self.engines.diagnostics()

    def _load_model(self, checkpoint: Optional[str]) -> torch.nn.Module:
        from dro_depth.models.dro import build_dro, load_dro
        from dro_depth.weights import default_dro_checkpoint

        path = Path(checkpoint) if checkpoint else default_dro_checkpoint()
        if path is None:
            self.untrained = True
            logger.warning('no DRO checkpoint given and no bundled default model: the network has RANDOM '
                           'weights and its depth and poses are meaningless (untrained)')
            torch.manual_seed(0)
            return build_dro()
        if not path.is_file():
            raise FileNotFoundError(f'DRO checkpoint not found: {path}')
        self.checkpoint = path
        return load_dro(str(path), device='cpu', dtype=torch.float32)

    @property
    def iterations(self) -> int:
        return self._iterations

    @iterations.setter
    def iterations(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
            raise ConfigError(f'iterations must be an integer in [0, 64], got {value!r}')
        self._iterations = value

    @property
    def num_refs(self) -> int:
        return self.window.size

    @num_refs.setter
    def num_refs(self, value: int) -> None:
        self.window.resize(value)

    @property
    def T_world_cam(self) -> np.ndarray:
        return self._T_world_cam.copy()

    def reset(self, reason: str) -> None:
        """Drop the reference window; the trajectory continues from the last pose."""
        logger.info('estimator reset: %s', reason)
        self.window.clear()
        self._pending_reset = reason

    # ------------------------------------------------------------------ input checks
    def _check_image(self, image: Any) -> np.ndarray:
        if isinstance(image, torch.Tensor):
            raise InputError('image must be a numpy array (H x W x 3 uint8 RGB), got a torch tensor')
        if not isinstance(image, np.ndarray):
            raise InputError(f'image must be a numpy array (H x W x 3 uint8 RGB), got {type(image).__name__}')
        if image.dtype != np.uint8:
            raise InputError(f'image must be uint8 RGB, got dtype {image.dtype}')
        if image.ndim >= 2:
            self.check_size(image.shape[1], image.shape[0])
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f'image must be H x W x 3 RGB (or H x W mono), got shape {image.shape}')
        return image

    def check_size(self, width: int, height: int) -> None:
        """Raise InputError unless a ``width`` x ``height`` image is within 16x16 and ``max_input_pixels``."""
        if width * height > self.config.max_input_pixels:
            raise InputError(f'image is too large ({width}x{height} = {width * height} pixels > '
                             f'max_input_pixels {self.config.max_input_pixels})')
        if height < MIN_IMAGE_SIDE or width < MIN_IMAGE_SIDE:
            raise InputError(f'image is too small ({width}x{height}), need at least '
                             f'{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}')

    def check_frame(self, width: int, height: int, K: Any) -> np.ndarray:
        """Every check :meth:`track` makes before inference that needs no pixels (size, intrinsics), in O(1):
        what the ROS node runs in its subscription callback so that a malformed frame is always refused under
        its reason, however busy inference is. Returns K as validated float64.

        Raises:
            InputError, IntrinsicsError (DroDepthError).
        """
        self.check_size(int(width), int(height))
        return validate_intrinsics(K, int(width), int(height))

    def _check_stamp(self, stamp: Any, stamp_ns: Any) -> int:
        """Integer nanoseconds; duplicates raise, backwards time and large gaps reset (see sfm.stamps)."""
        ns = as_stamp_ns(stamp, stamp_ns)
        restart = self._stamps.check(ns)
        if restart:
            self.reset(restart)
        return ns

    def new_timeline(self, reason: str = 'ROS time jumped backwards') -> None:
        """Time itself went back (a bag replayed in a loop with use_sim_time): forget every published stamp,
        so the stamps that come again are tracked and published again; tracking restarts (the trajectory
        continues from the last pose). Without this call a stamp is never accepted twice (see sfm.stamps)."""
        self._stamps.new_timeline()
        self.reset(reason)

    def _set_camera(self, camera: PinholeCamera) -> None:
        old = self._camera
        if old is not None and old.width == camera.width and old.height == camera.height \
                and np.allclose(old.K, camera.K, rtol=1e-6, atol=1e-6):
            return
        if old is not None and len(self.window):
            self.reset('camera intrinsics or image size changed')
        self._camera = camera
        self._net_camera = camera.resized(self.config.width, self.config.height)

    # ------------------------------------------------------------------ main entry
    def _to_tensor(self, image: np.ndarray) -> torch.Tensor:
        w, h = self.config.width, self.config.height
        if image.shape[0] != h or image.shape[1] != w:
            shrinking = image.shape[0] > h and image.shape[1] > w
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        t = torch.from_numpy(np.ascontiguousarray(image)).to(self.device, non_blocking=True)
        return t.permute(2, 0, 1).float().div_(255.0)

    def _autocast(self):
        if self.precision in _AUTOCAST_DTYPES and self.device.type == 'cuda':
            return torch.autocast('cuda', dtype=_AUTOCAST_DTYPES[self.precision])
        return nullcontext()

    def track(self, image: np.ndarray, K: Any, stamp: float | None = None, *,
              stamp_ns: int | None = None) -> FrameResult:
        """Estimate depth and pose for one frame.

        Args:
            image: uint8 RGB (H, W, 3) (or mono (H, W)).
            K: 3x3 intrinsics in pixels at the image's resolution.
            stamp: seconds (sensor time); must increase. Backwards time or a large gap resets the window.
                Converted once to integer nanoseconds (to the nearest ns).
            stamp_ns: instead of ``stamp``, exact integer nanoseconds (what the ROS node passes). Stamps
                1 ns apart are distinct; a stamp inside time already published (a duplicate, a stale
                re-delivery A, B, A, a late frame, or X again after X, Y, X - 5 s) raises
                :class:`~dro_depth.sfm.stamps.DuplicateStampError` and leaves tracking as it was, until
                :meth:`new_timeline` (ROS time jumped back).

        Returns:
            :class:`FrameResult` at the input resolution.

        Raises:
            InputError, IntrinsicsError, StampError (all DroDepthError): the frame is unusable; the state
            is unchanged.
        """
        frame = self._prepare(image, K, stamp, stamp_ns)
        net = self._infer(frame)
        motion = self._decide_motion(frame, net)
        return self._finish(frame, net, motion)

    # ------------------------------------------------------------------ the four steps of track()
    def _prepare(self, image: Any, K: Any, stamp: Any, stamp_ns: Any = None) -> _Frame:
        """Checks, camera change, network-size tensors and the reference keyframes (no network call)."""
        t_start = time.perf_counter()
        image = self._check_image(image)
        height, width = image.shape[:2]
        camera = PinholeCamera(self.check_frame(width, height, K), width, height)
        ns = self._check_stamp(stamp, stamp_ns)
        stamp = float(stamp) if stamp is not None else ns * 1e-9
        self._set_camera(camera)
        target = self._to_tensor(image)
        K_net = torch.as_tensor(self._net_camera.K, dtype=torch.float32, device=self.device)[None]
        refs_kf = self.window.references()
        timings = {'preprocess': (time.perf_counter() - t_start) * 1e3}
        return _Frame(stamp=stamp, stamp_ns=ns, camera=camera, target=target, K_net=K_net, refs_kf=refs_kf,
                      timings=timings, t_start=t_start)

    def _infer(self, frame: _Frame) -> _NetOutput:
        """The network call: single-view depth on the first frame, else depth and poses against the window."""
        if frame.first:
            refs, iterations = frame.target[None, None], 0
        else:
            refs, iterations = torch.stack([kf.image for kf in frame.refs_kf])[None], self._iterations
        engine, iterations = self.engines.get(refs.shape[1], iterations)
        if engine is not None:             # a compiled engine (it encodes its references itself)
            t0 = time.perf_counter()
            out = engine(frame.target[None], refs, frame.K_net)
            frame.timings['engine'] = (time.perf_counter() - t0) * 1e3
        else:
            cached = [kf.features for kf in frame.refs_kf]
            usable = cached and all(f is not None for f in cached)
            ref_features = torch.stack(cached)[None] if usable else None
            with torch.inference_mode(), self._autocast():
                out = self.model(frame.target[None], refs, frame.K_net, iterations=iterations,
                                 timings=frame.timings, ref_features=ref_features)
        inv = out.inv_depth[0, 0].float()
        conf = getattr(out, 'confidence', None)
        conf = conf[0, 0].float() if conf is not None else torch.ones_like(inv)
        return _NetOutput(inv_depth=inv, confidence=conf, poses=out.poses[0].double().cpu().numpy(),
                          iterations=iterations, t_post=time.perf_counter())

    def _decide_motion(self, frame: _Frame, net: _NetOutput) -> _Motion:
        """Tracking state, reason, pose and covariance of this frame; updates the trajectory state."""
        reset_reason, self._pending_reset = self._pending_reset, ''
        state, reason = TrackingState.TRACKING, ''
        inv = net.inv_depth
        valid_inv = inv[torch.isfinite(inv) & (inv > 0)]
        if not torch.isfinite(inv).all() or not np.all(np.isfinite(net.poses)) or valid_inv.numel() == 0:
            state, reason = TrackingState.LOST, 'network output is not finite'
            median_depth = float('nan')
        else:
            median_depth = float(1.0 / valid_inv.median())
        motion = _Motion(state=state, reason=reason, T_world_cam=self._T_world_cam,
                         median_depth=median_depth, reset_reason=reset_reason)
        if frame.first:
            motion.state = TrackingState.INITIALIZING
            motion.reason = reset_reason or 'first frame: single-view depth'
        elif motion.state is not TrackingState.LOST:
            self._relative_motion(frame, net, motion)
        if motion.state is TrackingState.LOST:
            self.window.clear()
            motion.covariance = np.eye(6) * LOST_COVARIANCE
        else:
            motion.covariance = (frame.refs_kf[0].covariance if frame.refs_kf else self._covariance) \
                + motion.step_cov
            self._covariance = motion.covariance
        self._T_world_cam = motion.T_world_cam
        return motion

    def _relative_motion(self, frame: _Frame, net: _NetOutput, motion: _Motion) -> None:
        """Chain the network's relative pose onto the newest reference: accept, hold (static) or reject."""
        refs_kf = frame.refs_kf
        T_ref_cam = pose_vec_to_matrix(net.poses)           # (N, 4, 4): T_ref_tgt per reference
        estimates = np.stack([kf.T_world_cam @ T for kf, T in zip(refs_kf, T_ref_cam)])
        T0 = T_ref_cam[0]
        motion.baseline_ratio = translation_norm(T0) / max(motion.median_depth, 1e-6)
        rot_deg = math.degrees(rotation_angle(T0))
        if motion.baseline_ratio > self.config.max_step_ratio or rot_deg > self.config.max_step_rotation_deg:
            motion.state = TrackingState.LOST
            motion.reason = (f'pose rejected: step of {motion.baseline_ratio:.2f} x median depth and '
                             f'{rot_deg:.1f} deg exceeds max_step_ratio / max_step_rotation_deg')
            return
        motion.T_world_cam = estimates[0]
        if motion.baseline_ratio < self.config.static_baseline_ratio:
            # Too little parallax: the translation is noise. Keep the rotation, hold position.
            T_static = T0.copy()
            T_static[:3, 3] = 0.0
            motion.T_world_cam = refs_kf[0].T_world_cam @ T_static
            motion.state = TrackingState.STATIC
            motion.reason = (f'baseline {motion.baseline_ratio:.4f} x median depth is below '
                             f'static_baseline_ratio {self.config.static_baseline_ratio}: translation held')
        motion.step_cov = self._step_covariance(T0, estimates)

    def _finish(self, frame: _Frame, net: _NetOutput, motion: _Motion) -> FrameResult:
        """Depth and confidence at the input size, the keyframe decision, and the result."""
        depth_np, conf_np = self._output_maps(frame, net, lost=motion.state is TrackingState.LOST)
        is_keyframe = self._maybe_push_keyframe(frame, motion)
        self._stamps.accept(frame.stamp_ns)
        self._frame_index += 1
        timings = frame.timings
        timings['postprocess'] = (time.perf_counter() - net.t_post) * 1e3
        timings['total'] = (time.perf_counter() - frame.t_start) * 1e3
        reason, reset_reason = motion.reason, motion.reset_reason
        if reset_reason and motion.state is not TrackingState.INITIALIZING:
            reason = f'{reset_reason}; {reason}' if reason else reset_reason
        return FrameResult(stamp=frame.stamp, depth=depth_np, confidence=conf_np,
                           T_world_cam=motion.T_world_cam.copy(), covariance=motion.covariance,
                           state=motion.state, reason=reason, is_keyframe=is_keyframe,
                           reset=bool(reset_reason) or motion.state is TrackingState.LOST, timings=timings,
                           iterations=net.iterations, num_refs=0 if frame.first else len(frame.refs_kf),
                           baseline_ratio=motion.baseline_ratio, camera=frame.camera, stamp_ns=frame.stamp_ns)

    def _output_maps(self, frame: _Frame, net: _NetOutput, lost: bool) -> tuple[np.ndarray, np.ndarray]:
        """Depth float32 (H, W) metres, NaN outside [min_depth, max_depth], and confidence float32 (H, W)
        in [0, 1] (0 where invalid or lost), both at the input resolution."""
        size = (frame.camera.height, frame.camera.width)
        inv_full = F.interpolate(net.inv_depth[None, None], size=size, mode='bilinear', align_corners=False)[0, 0]
        conf_full = F.interpolate(net.confidence[None, None], size=size, mode='bilinear',
                                  align_corners=False)[0, 0].clamp_(0.0, 1.0)
        depth = 1.0 / inv_full.clamp(min=1e-12)
        valid = (inv_full > 0) & torch.isfinite(inv_full) & (depth >= self.config.min_depth) \
            & (depth <= self.config.max_depth)
        depth = torch.where(valid, depth, torch.full_like(depth, float('nan')))
        conf_full = torch.where(valid, conf_full, torch.zeros_like(conf_full))
        if lost:
            conf_full.zero_()
        return (depth.cpu().numpy().astype(np.float32, copy=False),
                conf_full.cpu().numpy().astype(np.float32, copy=False))

    def _maybe_push_keyframe(self, frame: _Frame, motion: _Motion) -> bool:
        """Push this frame into the window when the keyframe policy wants it; keeps its DRO features so later
        frames encode only themselves."""
        if motion.state is TrackingState.LOST or not math.isfinite(motion.median_depth):
            return False
        if not self.window.wants(motion.T_world_cam, frame.stamp, static=motion.state is TrackingState.STATIC):
            return False
        features = None
        if hasattr(self.model, 'features') and not self.engines.compiles:
            t_kf = time.perf_counter()
            with torch.inference_mode(), self._autocast():
                features = self.model.features(frame.target[None])[0]
            frame.timings['keyframe_features'] = (time.perf_counter() - t_kf) * 1e3
        self.window.push(Keyframe(image=frame.target, T_world_cam=motion.T_world_cam.copy(), stamp=frame.stamp,
                                  median_depth=motion.median_depth, index=self._frame_index,
                                  covariance=motion.covariance.copy(), features=features))
        return True

    @staticmethod
    def _step_covariance(T0: np.ndarray, estimates: np.ndarray) -> np.ndarray:
        """Covariance added by one relative-pose step (world frame, ROS order)."""
        t = translation_norm(T0)
        angle = rotation_angle(T0)
        var_t = (_SIGMA_T_FLOOR + _SIGMA_T_REL * t) ** 2
        var_r = (_SIGMA_R_FLOOR + _SIGMA_R_REL * angle) ** 2
        cov = np.diag([var_t] * 3 + [var_r] * 3)
        if len(estimates) > 1:
            # Disagreement between the references' answers for the same pose.
            dt = estimates[1:, :3, 3] - estimates[0, :3, 3]
            cov[:3, :3] += np.diag(np.mean(dt ** 2, axis=0))
            dr = np.array([rotation_angle(e[:3, :3] @ estimates[0, :3, :3].T) for e in estimates[1:]])
            cov[3:, 3:] += np.eye(3) * float(np.mean(dr ** 2)) / 3.0
        return cov

