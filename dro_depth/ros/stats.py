"""Thread-safe counters, rates and latency percentiles of the node (what /diagnostics reports).

Rates and the receive -> publish latency use the steady clock (``time.monotonic``), which bag replay with
``use_sim_time`` cannot disturb. The stamp -> publish latency compares the node clock with the input
stamp, so it is in sim time under ``use_sim_time`` (meaningful when the bag plays at rate 1).
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Deque, Dict, Optional

import numpy as np

__all__ = ['DROP_REASONS', 'RateMeter', 'LatencyWindow', 'NodeStats']

# Why a received image produced no output.
# internal_error: a bug (not bad input) raised while processing; logged with its traceback.
DROP_REASONS = ('bad_encoding', 'bad_input', 'unpaired', 'overload', 'duplicate_stamp', 'too_large',
                'internal_error')


class RateMeter:
    """Events per second over a sliding window of the last ``window`` seconds (steady clock)."""

    def __init__(self, window: float = 5.0, max_events: int = 1000) -> None:
        self.window = window
        self._times: Deque[float] = deque(maxlen=max_events)

    def tick(self, now: Optional[float] = None) -> None:
        self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: Optional[float] = None) -> float:
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        n = len(self._times)
        if n < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (n - 1) / span if span > 0 else 0.0


class LatencyWindow:
    """The last ``size`` samples (milliseconds) and their percentiles."""

    def __init__(self, size: int = 300) -> None:
        self._values: Deque[float] = deque(maxlen=size)

    def add(self, ms: float) -> None:
        self._values.append(float(ms))

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float:
        if not self._values:
            return float('nan')
        return float(np.percentile(np.fromiter(self._values, float), q))


class NodeStats:
    """Everything the node counts, updated from the executor and worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = 0          # images received
        self.camera_infos = 0      # camera infos received
        self.paired = 0            # images that found their camera info
        self.processed = 0         # frames the estimator answered
        self.published = 0         # frames whose outputs were published
        self.drops: Counter = Counter({reason: 0 for reason in DROP_REASONS})
        self.last_drop_reason: Dict[str, str] = {}
        self.input_rate = RateMeter()
        self.output_rate = RateMeter()
        self.latency: Dict[str, LatencyWindow] = {
            'stamp_to_publish': LatencyWindow(),     # input header stamp -> outputs published (node clock)
            'receive_to_publish': LatencyWindow(),   # image callback -> outputs published (steady clock)
            'inference': LatencyWindow(),            # SfmEstimator.track()
            'publish': LatencyWindow(),              # conversions + publish of all outputs
        }
        self.max_queue_depth = 0   # most frames ever waiting for the inference thread
        self.states: Counter = Counter()   # processed frames by the estimator's tracking state

    def image_received(self) -> None:
        with self._lock:
            self.received += 1
            self.input_rate.tick()

    def camera_info_received(self) -> None:
        with self._lock:
            self.camera_infos += 1

    def pair(self) -> None:
        with self._lock:
            self.paired += 1

    def drop(self, reason: str, detail: str = '') -> None:
        with self._lock:
            self.drops[reason] += 1
            if detail:
                self.last_drop_reason[reason] = detail

    def set_drops(self, reason: str, count: int, detail: str = '') -> None:
        """Set a drop count kept elsewhere (e.g. by message_filters), with a reason text when it grew."""
        with self._lock:
            if count > self.drops[reason] and detail:
                self.last_drop_reason[reason] = detail
            self.drops[reason] = count

    def frame_processed(self, inference_ms: float, state: str = '') -> None:
        """One frame answered in ``inference_ms``; ``state`` (tracking, initializing, lost) is counted."""
        with self._lock:
            self.processed += 1
            self.latency['inference'].add(inference_ms)
            if state:
                self.states[state] += 1

    def frame_published(self, receive_to_publish_ms: float, stamp_to_publish_ms: float,
                        publish_ms: float) -> None:
        with self._lock:
            self.published += 1
            self.output_rate.tick()
            self.latency['receive_to_publish'].add(receive_to_publish_ms)
            self.latency['stamp_to_publish'].add(stamp_to_publish_ms)
            self.latency['publish'].add(publish_ms)

    def queue_depth(self, depth: int) -> None:
        with self._lock:
            self.max_queue_depth = max(self.max_queue_depth, depth)

    def snapshot(self) -> dict:
        """A consistent copy of all numbers."""
        with self._lock:
            snap = {
                'received': self.received, 'camera_infos': self.camera_infos, 'paired': self.paired,
                'processed': self.processed, 'published': self.published,
                'drops': dict(self.drops), 'drop_details': dict(self.last_drop_reason),
                'input_rate_hz': self.input_rate.rate(), 'output_rate_hz': self.output_rate.rate(),
                'max_queue_depth': self.max_queue_depth, 'states': dict(self.states),
            }
            for name, window in self.latency.items():
                snap[f'{name}_p50_ms'] = window.percentile(50)
                snap[f'{name}_p95_ms'] = window.percentile(95)
            return snap
