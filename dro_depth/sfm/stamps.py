"""Frame stamps as integer nanoseconds, and the one rule for duplicate, stale and backwards stamps.

Stamps are compared as integers end to end: two stamps 1 ns apart are distinct frames, whatever their
magnitude (float seconds cannot tell 1 ns apart after about 2**53 ns, i.e. 104 days of epoch time, and
epoch stamps are ~1.7e18 ns). Float seconds are accepted at the documented API and converted once.

The rule (:class:`StampOrder`), applied by the estimator only: **a stamp is published at most once per
timeline**, and a timeline ends only when ROS time itself jumps backwards (the node calls
:meth:`StampOrder.new_timeline`, as tf2 clears its buffer on such a jump: a bag replayed in a loop with
``use_sim_time``). Within a timeline:

* the stamps accepted so far cover spans of time: one span per run of stamps tracked one after the other,
  from its first to its newest stamp. A stamp inside a span is refused with :class:`DuplicateStampError`
  (the frame is dropped, tracking is untouched): the newest stamp again (a duplicate), a stamp already
  published and re-delivered (A, B, A), a late frame older than the previous one (out of order), or a stamp
  inside time already published before a backwards jump (X, Y, X - 5 s, X: the last X is refused).
  Publishing it would put a second trajectory into time the outputs (and TF) already cover;
* a stamp older than the newest but outside every span (a clock reset of the camera, a bag replayed
  without ``--clock``) starts a new run: tracking restarts from the last pose;
* a forward gap above ``max_gap_ns`` restarts tracking too, and starts a new run (nothing was published in
  the gap, so the gap is not covered).

Memory is bounded: at most ``max_spans`` spans are kept; beyond that the two closest are merged, which
only ever refuses more (stamps in the merged gap), never publishes a stamp twice.
"""
from __future__ import annotations

import bisect
import math
from collections import deque
from numbers import Integral, Real
from typing import Any, Deque, List, Optional, Set

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
    """Remembers the time covered by accepted stamps and classifies each new one (see the module docstring).

    Args:
        max_gap_ns: a forward gap above this restarts tracking.
        memory: how many recent accepted stamps are remembered exactly (only for the wording of a refusal).
        max_spans: most runs remembered; beyond it the two closest are merged.
    """

    def __init__(self, max_gap_ns: int, memory: int = 64, max_spans: int = 256) -> None:
        self.max_gap_ns = int(max_gap_ns)
        self.max_spans = max(int(max_spans), 1)
        self._recent: Deque[int] = deque(maxlen=memory)
        self._seen: Set[int] = set()
        self._los: List[int] = []        # spans [lo, hi], sorted and disjoint
        self._his: List[int] = []
        self._run = -1                   # index of the current run's span
        self.last_ns: Optional[int] = None

    def _span_of(self, ns: int) -> int:
        """Index of the span containing ``ns``, or -1."""
        k = bisect.bisect_right(self._los, ns) - 1
        return k if k >= 0 and ns <= self._his[k] else -1

    def check(self, ns: int) -> str:
        """Classify ``ns`` without remembering it.

        Returns:
            '' to continue tracking, or the reason tracking must restart (backwards time, a gap).

        Raises:
            DuplicateStampError: ``ns`` lies in time already covered by accepted stamps of this timeline.
        """
        newest = self.last_ns
        k = self._span_of(ns)
        if k >= 0:
            if ns == newest:
                what = 'the same stamp as the previous frame (duplicate)'
            elif ns in self._seen:
                what = f'a stamp already published (stale re-delivery; the newest is {newest} ns)'
            elif k == self._run:
                what = f'a stamp {(newest - ns) * 1e-9:.9f} s older than the previous frame (out of order)'
            else:
                what = (f'a stamp inside time already published before time went backwards '
                        f'({self._los[k]}..{self._his[k]} ns)')
            raise DuplicateStampError(f'frame at {ns} ns has {what}: dropped, tracking kept (stamps are '
                                      'published once unless ROS time itself jumps back)')
        if newest is None:
            return ''
        if ns < newest:
            return f'time went backwards by {(newest - ns) * 1e-9:.9f} s ({newest} -> {ns} ns)'
        if ns - newest > self.max_gap_ns:
            return f'gap of {(ns - newest) * 1e-9:.3f} s between frames exceeds max_time_gap'
        return ''

    def accept(self, ns: int) -> None:
        """Remember ``ns`` as published (call once the frame succeeded, after :meth:`check`)."""
        if self.last_ns is None or ns < self.last_ns or ns - self.last_ns > self.max_gap_ns:   # a new run
            k = bisect.bisect_right(self._los, ns)
            self._los.insert(k, ns)
            self._his.insert(k, ns)
            self._run = k
        else:                                                  # the run grows, over any span it passed
            k = self._run
            self._his[k] = ns
            while k + 1 < len(self._los) and self._los[k + 1] <= ns:
                self._his[k] = max(ns, self._his[k + 1])
                del self._los[k + 1], self._his[k + 1]
        if len(self._los) > self.max_spans:
            self._merge_closest()
        if len(self._recent) == self._recent.maxlen:
            self._seen.discard(self._recent[0])
        self._recent.append(ns)
        self._seen.add(ns)
        self.last_ns = ns

    def _merge_closest(self) -> None:
        gaps = [self._los[i + 1] - self._his[i] for i in range(len(self._los) - 1)]
        i = gaps.index(min(gaps))
        self._his[i] = self._his[i + 1]
        del self._los[i + 1], self._his[i + 1]
        if self._run > i:
            self._run -= 1

    @property
    def spans(self) -> List[tuple]:
        """The covered spans ``(lo, hi)`` in ns, oldest first (diagnostics and tests)."""
        return list(zip(self._los, self._his))

    def new_timeline(self) -> None:
        """Forget every stamp: ROS time jumped backwards (a looped bag with use_sim_time), so the stamps that
        come next may repeat the old ones legitimately."""
        self._recent.clear()
        self._seen.clear()
        self._los.clear()
        self._his.clear()
        self._run = -1
        self.last_ns = None

    clear = new_timeline
