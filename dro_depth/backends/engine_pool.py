"""DRO engines for the (reference count, iterations) pairs a streaming estimator asks for, compiled in a
background thread while the engine of the previous setting (or torch) keeps serving.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import nn

from .dro import CompiledDRO, compile_dro
from .info import BackendInfo, check_precision, resolve_backend, unavailable_reason

__all__ = ['DROEnginePool']

logger = logging.getLogger(__name__)
Key = Tuple[int, int]        # (num_refs, iterations)
_POOLS: 'weakref.WeakSet[DROEnginePool]' = weakref.WeakSet()


def _close_all() -> None:
    """At interpreter exit: queued compiles are skipped; the one running finishes (its thread is not a
    daemon, so the process never exits while OpenVINO is inside a compile, which aborts it)."""
    for pool in list(_POOLS):
        pool._closed = True


# runs before non-daemon threads are joined (what concurrent.futures uses); plain atexit runs too late
getattr(threading, '_register_atexit', lambda fn: None)(_close_all)


class DROEnginePool:
    """Compiled DRO engines by (num_refs, iterations); misses compile in the background.

    Args:
        model: the torch ``DRONet`` (eval, float32); it serves whenever no engine is ready.
        backend, precision, height, width, device, threads, cache_dir: as :func:`compile_dro`.
        wait: compile the engines of :meth:`prepare` in the caller's thread (benchmarks, tests).
    """

    def __init__(self, model: nn.Module, *, backend: str, precision: str, height: int, width: int,
                 device: torch.device, threads: int = 0, cache_dir: str | Path | None = None,
                 wait: bool = False) -> None:
        self.model = model
        self.requested = backend
        self.backend = resolve_backend(backend, device)
        self.precision = precision
        self._args = dict(backend=backend, precision=precision, height=height, width=width, device=device,
                          threads=threads, cache_dir=cache_dir)
        self.wait = wait
        self._engines: Dict[Key, CompiledDRO] = {}
        self._failed: Dict[Key, str] = {}
        self._queued: set = set()
        self._lock = threading.Lock()
        self._jobs: 'queue.Queue[Key]' = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._last: Dict[int, int] = {}          # num_refs -> iterations of the engine last served
        self._closed = False
        _POOLS.add(self)
        self.serving = 'torch'
        self.fallback_reason = ''
        self.compile_s: Dict[str, float] = {}
        if self.backend != 'torch':
            check_precision(self.backend, precision)
            reason = unavailable_reason(self.backend, device)
            if reason:
                self._fall_back(f'backend {self.backend} is not available: {reason}')

    def _fall_back(self, reason: str) -> None:
        """Serve with torch from now on; one WARN line, the reason stays in :meth:`diagnostics`."""
        if not self.fallback_reason:
            logger.warning('DRO falls back to torch: %s', reason)
        self.fallback_reason = reason
        self.backend = 'torch'

    @property
    def compiles(self) -> bool:
        """False when every call runs the torch model (backend torch)."""
        return self.backend != 'torch'

    def prepare(self, num_refs: int, iterations: int) -> None:
        """Queue the engines a window of ``num_refs`` at ``iterations`` needs (largest window first)."""
        smaller = [(n, iterations) for n in range(num_refs - 1, 0, -1)]
        for key in [(num_refs, iterations)] + smaller + [(1, 0)]:
            self._request(key)

    def _request(self, key: Key) -> None:
        if not self.compiles or self._closed:
            return
        with self._lock:
            if key in self._engines or key in self._failed or key in self._queued:
                return
            self._queued.add(key)
        if self.wait:
            self._compile(key)
            return
        self._jobs.put(key)
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name='dro-compile', daemon=False)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                key = self._jobs.get(timeout=1.0)
            except queue.Empty:
                return
            if self._closed:
                return
            self._compile(key)

    def close(self, timeout: float = 60.0) -> bool:
        """Compile nothing more and wait (bounded) for a compile in progress; True when none is left.

        Call before the process exits: a compile thread still inside OpenVINO at interpreter exit aborts
        the process.
        """
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _compile(self, key: Key) -> None:
        n, it = key
        t0 = time.perf_counter()
        try:
            engine = compile_dro(self.model, num_refs=n, iterations=it, strict=True, **self._args)
        except Exception as exc:  # noqa: BLE001 - never let a compile failure reach the tracking thread
            engine, reason = None, f'{type(exc).__name__}: {exc}'
        with self._lock:
            self._queued.discard(key)
            if engine is None:
                self._failed[key] = reason
                self._fall_back(f'{n} refs x {it} iterations: {reason}')
            else:
                self._engines[key] = engine
                self.compile_s[f'{n}x{it}'] = round(time.perf_counter() - t0, 2)

    def get(self, num_refs: int, iterations: int) -> Tuple[Optional[Callable[..., Any]], int]:
        """``(engine or None, iterations it runs)`` for a call with ``num_refs`` references.

        None means: run the torch model at ``iterations``. When the engine of ``iterations`` is still
        compiling, the engine last served for ``num_refs`` (at its own iteration count) answers.
        """
        key = (num_refs, iterations)
        self._request(key)
        with self._lock:
            engine = self._engines.get(key)
            if engine is None and num_refs in self._last:
                old = self._engines.get((num_refs, self._last[num_refs]))
                if old is not None and key not in self._failed:
                    engine, iterations = old, self._last[num_refs]
        if engine is None:
            self.serving = 'torch'
            return None, iterations
        self._last[num_refs] = iterations
        self.serving = f'{engine.info.backend} {engine.info.precision}'
        return engine, iterations

    def ready(self, num_refs: int, iterations: int) -> bool:
        with self._lock:
            return (num_refs, iterations) in self._engines

    def diagnostics(self) -> Dict[str, Any]:
        """Which engine serves, what is compiling, compile times and the fallback reason."""
        with self._lock:
            return {'dro_backend_requested': self.requested, 'dro_backend': self.backend,
                    'dro_precision': self.precision, 'dro_engine': self.serving,
                    'dro_engines_ready': ','.join(f'{n}x{it}' for n, it in sorted(self._engines)),
                    'dro_engines_compiling': len(self._queued),
                    'dro_compile_s': ','.join(f'{k}:{v}' for k, v in self.compile_s.items()),
                    'dro_backend_fallback': self.fallback_reason}

    def info(self, num_refs: int, iterations: int) -> Optional[BackendInfo]:
        with self._lock:
            engine = self._engines.get((num_refs, iterations))
        return None if engine is None else engine.info
