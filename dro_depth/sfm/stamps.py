"""Frame stamps as integer nanoseconds, and the one rule for duplicate, stale and backwards stamps.

Stamps are compared as integers end to end: two stamps 1 ns apart are distinct frames, whatever their
magnitude (float seconds cannot tell 1 ns apart after about 2**53 ns, i.e. 104 days of epoch time, and
epoch stamps are ~1.7e18 ns). Float seconds are accepted at the documented API and converted once.

The rule (:class:`StampOrder`), applied by the estimator only:

* the newest accepted stamp again is a duplicate, and a stamp equal to one of the last ``memory``
  accepted stamps at most ``stale_window_ns`` older than the newest is a stale re-delivery (A, B, A):
  both raise :class:`DuplicateStampError`, the frame is dropped and tracking is untouched;
* any other stamp older than the newest accepted one means time went backwards (a bag replayed in a
  loop, a clock reset): tracking restarts from the last pose and the stamp memory is cleared;
* a gap above ``max_gap_ns`` restarts tracking too.
"""
from __future__ import annotations

import math
from collections import deque
from numbers import Integral, Real
from typing import Any, Deque, Optional, Set

from .errors import DuplicateStampError, StampError

__all__ = ['StampError', 'DuplicateStampError', 'seconds_to_ns', 'as_stamp_ns', 'StampOrder']


def seconds_to_ns(seconds: Any) -> int:
    """Float (or integer) seconds as integer nanoseconds, rounded to the nearest nanosecond.

    Raises:
        StampError: not a real number, NaN/inf or negative.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, Real):
        raise StampError(f'stamp must be a number of seconds, got {seconds!r}')
    value = float(seconds)
    if not math.isfinite(value) or value < 0:
        raise StampError(f'stamp must be finite and >= 0 seconds, got {seconds!r}')
    if isinstance(seconds, Integral):
        return int(seconds) * 1_000_000_000
    whole = math.floor(value)
    return int(whole) * 1_000_000_000 + int(round((value - whole) * 1e9))


def as_stamp_ns(stamp: Any = None, stamp_ns: Any = None) -> int:
    """The one conversion: exactly one of ``stamp`` (seconds) or ``stamp_ns`` (integer nanoseconds).

    Raises:
        StampError: neither or both given, a non-integer ``stamp_ns``, NaN/inf or negative values.
    """
    if (stamp is None) == (stamp_ns is None):
        raise StampError('give exactly one of stamp (seconds) or stamp_ns (integer nanoseconds)')
    if stamp_ns is None:
        return seconds_to_ns(stamp)
    if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, Integral):
        raise StampError(f'stamp_ns must be an integer number of nanoseconds, got {stamp_ns!r}')
    if stamp_ns < 0:
        raise StampError(f'stamp_ns must be >= 0, got {stamp_ns}')
    return int(stamp_ns)


class StampOrder:
    """Remembers accepted stamps and classifies each new one (see the module docstring).

    Args:
        max_gap_ns: a forward gap above this restarts tracking.
        memory: how many accepted stamps count for the duplicate/stale check.
        stale_window_ns: how far behind the newest a re-delivered stamp still counts as stale (older ones
            are a loop or clock reset).
    """

    def __init__(self, max_gap_ns: int, memory: int = 64, stale_window_ns: int = 1_000_000_000) -> None:
        self.max_gap_ns = int(max_gap_ns)
        self.stale_window_ns = int(stale_window_ns)
        self._recent: Deque[int] = deque(maxlen=memory)
        self._seen: Set[int] = set()
        self.last_ns: Optional[int] = None

    def check(self, ns: int) -> str:
        """Classify ``ns`` without remembering it.

        Returns:
            '' to continue tracking, or the reason tracking must restart (backwards time, a gap).

        Raises:
            DuplicateStampError: ``ns`` was accepted recently.
        """
        newest = self.last_ns
        stale = ns in self._seen and newest is not None and newest - ns <= self.stale_window_ns
        if newest is not None and (ns == newest or stale):
            what = 'the same stamp as the previous frame (duplicate)' if ns == newest else \
                f'a stamp already processed, {(newest - ns) * 1e-9:.9f} s before the newest (stale)'
            raise DuplicateStampError(f'frame at {ns} ns has {what}: dropped, tracking kept')
        if self.last_ns is None:
            return ''
        if ns < self.last_ns:
            return (f'time went backwards by {(self.last_ns - ns) * 1e-9:.9f} s '
                    f'({self.last_ns} -> {ns} ns)')
        if ns - self.last_ns > self.max_gap_ns:
            return f'gap of {(ns - self.last_ns) * 1e-9:.3f} s between frames exceeds max_time_gap'
        return ''

    def accept(self, ns: int) -> None:
        """Remember ``ns`` as processed (call once the frame succeeded)."""
        if len(self._recent) == self._recent.maxlen:
            self._seen.discard(self._recent[0])
        self._recent.append(ns)
        self._seen.add(ns)
        self.last_ns = ns

    def clear(self) -> None:
        """Forget every stamp (after a restart: the next frame starts a new sequence)."""
        self._recent.clear()
        self._seen.clear()
        self.last_ns = None
