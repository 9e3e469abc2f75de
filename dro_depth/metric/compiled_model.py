"""A ZoeDepth-style metric model run by a compiled backend, with the same routing as the torch path.

One graph per (head, network size) computes the whole model for a fixed head: metric depth at network
size and, for two-head models, the router's probabilities. The frame runs the head of the current route;
when the router then switches the route (rare, with hysteresis), the frame is run again with the new
head, so results equal :meth:`ZoeDepth.infer` with a route chooser. Graphs compile in a background thread
while the torch model answers.

Memory is bounded: the network size follows the input's aspect ratio, so a one-off frame of another shape
(one 3840x2160 frame into a 640x480 stream) would compile and keep a whole engine for it. In the background
a size is compiled only once it has been asked for :data:`COMPILE_AFTER` times, and at most
:data:`MAX_GRAPHS` graphs are kept (the least recently used is dropped); until then torch answers.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dro_depth.backends import BackendInfo, compile_module
from dro_depth.models.metric.preprocess import crop_padding, network_size, pad_amounts, pad_reflect
from .routing import HEADS

__all__ = ['CompiledMetricModel']

logger = logging.getLogger(__name__)
Chooser = Callable[[Tensor], Sequence[str]]

#: Background mode: frames of one (head, size) before it is compiled (one-off sizes stay on torch).
COMPILE_AFTER = 3
#: Most compiled graphs kept (least recently used dropped first).
MAX_GRAPHS = 4


class CompiledMetricModel:
    """``infer`` of a ZoeDepth model through compiled graphs (see the module docstring).

    Args:
        model: ``ZoeDepth`` (light or BEiT-L) in eval mode, float32.
        backend, precision, device, threads, cache_dir: as :func:`~dro_depth.backends.compile_module`.
        wait: compile in the caller's thread instead of the background (benchmarks, tests).
    """

    def __init__(self, model: nn.Module, *, backend: str, precision: str = 'fp32',
                 device: str | torch.device = 'cpu', threads: int = 0, cache_dir: str | Path | None = None,
                 wait: bool = False) -> None:
        self.model = model
        self._args = dict(backend=backend, precision=precision, device=device, threads=threads,
                          cache_dir=cache_dir)
        self.wait = wait
        self._graphs: 'OrderedDict[Tuple[str, tuple], Any]' = OrderedDict()
        self._asked: 'OrderedDict[Tuple[str, tuple], int]' = OrderedDict()    # sizes not compiled yet
        self._pending: set = set()
        self._lock = threading.Lock()
        self.info: Optional[BackendInfo] = None
        self.serving = 'torch'
        self.fallback_reason = ''
        self._threads: List[threading.Thread] = []
        self._closed = False

    def _call(self, head: str) -> Callable[[Tensor], Tuple[Tensor, ...]]:
        def call(x: Tensor) -> Tuple[Tensor, ...]:
            out = self.model(x, head, resize=False)
            probs = out.route_probs
            return (out.metric_depth,) if probs is None else (out.metric_depth, probs)
        return call

    def _compile(self, key: Tuple[str, tuple], x: Tensor) -> None:
        head = key[0]
        x = x.clone()                # a normal tensor (the caller's may be an inference-mode tensor)
        try:
            graph = compile_module(self.model, (x,), input_names=('image',), call=self._call(head),
                                   name=f'metric_{head}_{x.shape[-2]}x{x.shape[-1]}', **self._args)
        except Exception as exc:  # noqa: BLE001 - a failure leaves torch serving (reason logged)
            logger.warning('metric model could not be compiled, torch keeps serving: %s', exc)
            graph = None
        with self._lock:
            self._pending.discard(key)
            if graph is not None:
                self._graphs[key] = graph
                while len(self._graphs) > MAX_GRAPHS:
                    self._graphs.popitem(last=False)
                self.info = graph.info
                self.fallback_reason = graph.info.fallback_reason or self.fallback_reason

    def _due(self, key: Tuple[str, tuple]) -> bool:
        """Whether ``key`` should compile now (always when ``wait``; else once asked COMPILE_AFTER times)."""
        if self.wait:
            return True
        count = self._asked.pop(key, 0) + 1
        if count >= COMPILE_AFTER:
            return True
        self._asked[key] = count
        while len(self._asked) > 16:
            self._asked.popitem(last=False)
        return False

    def _run(self, head: str, x: Tensor) -> Tuple[Tensor, ...]:
        key = (head, tuple(x.shape))
        with self._lock:
            graph = self._graphs.get(key)
            if graph is not None:
                self._graphs.move_to_end(key)
            start = graph is None and key not in self._pending and not self._closed and self._due(key)
            if start:
                self._pending.add(key)
        if start:
            if self.wait:
                self._compile(key, x)
                graph = self._graphs.get(key)
            else:
                # not a daemon: exiting while OpenVINO compiles aborts the process
                thread = threading.Thread(target=self._compile, args=(key, x.detach()), daemon=False,
                                          name='metric-compile')
                self._threads.append(thread)
                thread.start()
        if graph is None:
            self.serving = 'torch'
            with torch.inference_mode():
                return self._call(head)(x)
        self.serving = f'{graph.info.backend} {graph.info.precision}'
        return graph(x)

    def close(self, timeout: float = 60.0) -> bool:
        """Start no more compiles and wait (bounded) for those running; True when none is left."""
        self._closed = True
        for thread in self._threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def _once(self, images: Tensor, chooser: Optional[Chooser], guess: Optional[str], pad_input: bool,
              fh: float, fw: float, upsampling_mode: str) -> Tuple[Tensor, str]:
        pad_h, pad_w = pad_amounts(images.shape[-2], images.shape[-1], fh, fw) if pad_input else (0, 0)
        x = pad_reflect(images, pad_h, pad_w)
        h, w = network_size(x.shape[-2], x.shape[-1], self.model.img_size, self.model.keep_aspect_ratio)
        net = x if (h, w) == tuple(x.shape[-2:]) else F.interpolate(x, size=(h, w), mode='bilinear',
                                                                    align_corners=True)
        names: List[str] = list(self.model.domain_names)
        head = guess if guess in names else names[0]
        outs = self._run(head, net)
        if len(outs) > 1 and chooser is not None:
            route = str(chooser(outs[1])[0])
            chosen = HEADS.get(route, route)          # 'indoor' -> 'nyu'; a head name stays as it is
            if chosen != head:
                head, outs = chosen, self._run(chosen, net)
        depth = outs[0]
        if tuple(depth.shape[-2:]) != tuple(x.shape[-2:]):
            depth = F.interpolate(depth, size=x.shape[-2:], mode=upsampling_mode, align_corners=False)
        return crop_padding(depth, pad_h, pad_w), head

    def infer(self, images: Tensor, chooser: Optional[Chooser] = None, *, guess: Optional[str] = None,
              pad_input: bool = True, with_flip_aug: bool = False, fh: float = 3.0, fw: float = 3.0,
              upsampling_mode: str = 'bicubic') -> Tuple[Tensor, str]:
        """Metric depth ``(B=1, 1, H, W)`` metres at the input size and the head that made it.

        Args:
            images: ``(1, 3, H, W)`` RGB in [0, 1].
            chooser: called once with the router's probabilities ``(1, 2)``; returns ``[route]``
                ('indoor' / 'outdoor'). None for single-head models or a forced head via ``guess``.
            guess: the head to run first ('nyu' / 'kitti'), normally the current route's.
            pad_input, with_flip_aug, fh, fw, upsampling_mode: as :meth:`ZoeDepth.infer`; the flipped pass
                uses the head of the first.
        """
        depth, head = self._once(images, chooser, guess, pad_input, fh, fw, upsampling_mode)
        if with_flip_aug:
            flipped, _ = self._once(torch.flip(images, dims=[3]), None, head, pad_input, fh, fw,
                                    upsampling_mode)
            depth = (depth + torch.flip(flipped, dims=[3])) / 2
        return depth, head
