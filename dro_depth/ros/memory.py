"""Giving freed memory back to the OS: glibc malloc settings for a node that sees large frames.

Measured on ``sfm_node`` (README, Reliability): after one 3840x2160 frame the node kept hundreds of MiB it
had already freed. Two glibc malloc behaviours cause it:

* the dynamic mmap threshold: a freed mmapped block (default threshold 128 KiB) raises the threshold to
  the block's size, up to 32 MiB, so every later buffer below it (a 25 MB image message, 33 MB depth maps,
  torch tensors) comes from the heap or a thread's arena, where freed memory stays resident;
* fragmentation of the main heap and the per-thread arenas (executor, inference, metric, DDS threads):
  free pages inside them are only returned by ``malloc_trim``.

:class:`MallocTuning` fixes the mmap threshold once at start-up (``mallopt(M_MMAP_THRESHOLD)`` also turns the
dynamic adjustment off, so large buffers are always mmapped and unmapped when freed), optionally caps the
number of arenas (``M_ARENA_MAX``), and calls ``malloc_trim(0)`` after a large frame and periodically. Only
on Linux with glibc; anywhere else every call is a no-op and :attr:`MallocTuning.state` says why.
"""
from __future__ import annotations

import ctypes
import logging
import platform
import sys
import threading
import time
from typing import Any, Mapping, Optional

__all__ = ['MallocTuning', 'LARGE_FRAME_PIXELS', 'glibc', 'heap_usage']

logger = logging.getLogger(__name__)

# mallopt parameters (glibc malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

#: A frame with more pixels than this (1920x1080) is followed by a trim right away.
LARGE_FRAME_PIXELS = 1920 * 1080


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33+): every field a size_t, summed over all arenas."""
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks',
        'keepcost')]


def glibc() -> Optional[Any]:
    """The C library (ctypes) when it is glibc on Linux with mallopt and malloc_trim, else None."""
    if not sys.platform.startswith('linux') or platform.libc_ver()[0] != 'glibc':
        return None
    try:
        libc = ctypes.CDLL('libc.so.6')
    except OSError:
        return None
    if not hasattr(libc, 'mallopt') or not hasattr(libc, 'malloc_trim'):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    if hasattr(libc, 'mallinfo2'):                # glibc 2.33+
        libc.mallinfo2.argtypes = []
        libc.mallinfo2.restype = _MallInfo2
    return libc


def heap_usage(libc: Optional[Any] = None) -> dict:
    """malloc's own books in MiB (glibc ``mallinfo2``, all arenas), or {} where it is not available.

    * ``malloc_in_use_mb``: bytes handed out and not freed (arena blocks in use plus mmapped blocks);
    * ``malloc_free_mb``: free bytes held inside the arenas (resident only where touched and not trimmed);
    * ``malloc_mmapped_mb``: of the in-use bytes, those in mmapped blocks (at least ``mmap_threshold``).

    Set beside the process RSS, they say whether a growth is malloc's (in-use: a leak or a cache; free:
    fragmentation) or outside it (libraries' own mmaps, thread stacks, shared memory, code pages).
    """
    libc = libc if libc is not None else glibc()
    if libc is None or not hasattr(libc, 'mallinfo2'):
        return {}
    m = libc.mallinfo2()
    mib = float(2 ** 20)
    return {'malloc_in_use_mb': round((m.uordblks + m.hblkhd) / mib, 2),
            'malloc_free_mb': round(m.fordblks / mib, 2),
            'malloc_mmapped_mb': round(m.hblkhd / mib, 2)}


class MallocTuning:
    """The node's malloc settings and its trims (thread-safe).

    Args:
        mmap_threshold: bytes; allocations at least this large are mmapped and unmapped on free. 0 leaves
            glibc's dynamic threshold alone.
        arena_max: most malloc arenas; 0 leaves glibc's default (8 per core).
        trim_period: seconds between periodic ``malloc_trim(0)``; 0 = never (large frames still trim).
    """

    def __init__(self, mmap_threshold: int = 1 << 20, arena_max: int = 0, trim_period: float = 10.0) -> None:
        self.mmap_threshold = int(mmap_threshold)
        self.arena_max = int(arena_max)
        self.trim_period = float(trim_period)
        self._libc = glibc()
        self._lock = threading.Lock()
        self._last_trim = time.monotonic()
        self.trims = 0
        self.trim_ms = 0.0          # the last trim's duration
        self.state = 'not applied'

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> 'MallocTuning':
        """From a node's ``malloc_mmap_threshold``, ``malloc_arena_max`` and ``malloc_trim_period`` values."""
        return cls(values['malloc_mmap_threshold'], values['malloc_arena_max'], values['malloc_trim_period'])

    @property
    def available(self) -> bool:
        return self._libc is not None

    def apply(self) -> str:
        """Set the mallopt values (once, at start-up); returns what is in effect (also :attr:`state`)."""
        if self._libc is None:
            self.state = f'untouched: not glibc on Linux ({sys.platform}, {platform.libc_ver()[0] or "?"})'
            return self.state
        parts = []
        if self.mmap_threshold > 0:
            ok = self._libc.mallopt(M_MMAP_THRESHOLD, self.mmap_threshold) == 1
            parts.append(f'mmap_threshold {self.mmap_threshold}' + ('' if ok else ' (refused)'))
        else:
            parts.append('mmap_threshold dynamic')
        if self.arena_max > 0:
            ok = self._libc.mallopt(M_ARENA_MAX, self.arena_max) == 1
            parts.append(f'arena_max {self.arena_max}' + ('' if ok else ' (refused)'))
        parts.append(f'trim every {self.trim_period:g} s and after frames over {LARGE_FRAME_PIXELS} px'
                     if self.trim_period > 0 else f'trim after frames over {LARGE_FRAME_PIXELS} px')
        self.state = 'glibc: ' + ', '.join(parts)
        return self.state

    def trim(self) -> bool:
        """``malloc_trim(0)`` now: free pages of every arena go back to the OS; True if any was released."""
        if self._libc is None:
            return False
        with self._lock:
            t0 = time.perf_counter()
            released = bool(self._libc.malloc_trim(0))
            self.trim_ms = (time.perf_counter() - t0) * 1e3
            self._last_trim = time.monotonic()
            self.trims += 1
        return released

    def after_frame(self, pixels: int) -> bool:
        """Trim after a frame of ``pixels`` pixels if it was large or the period is over; True if trimmed."""
        if self._libc is None:
            return False
        due = self.trim_period > 0 and time.monotonic() - self._last_trim >= self.trim_period
        if pixels > LARGE_FRAME_PIXELS or due:
            self.trim()
            return True
        return False

    def diagnostics(self) -> dict:
        """State, trim count and duration, and malloc's books (:func:`heap_usage`; glibc only)."""
        return {'malloc': self.state, 'malloc_trims': self.trims, 'malloc_trim_ms': round(self.trim_ms, 2),
                **heap_usage(self._libc)}
