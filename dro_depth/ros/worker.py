"""Inference off the executor thread, through a single-slot mailbox that keeps only the newest frame.

Subscription callbacks :meth:`InferenceWorker.submit` frames and return at once; one worker thread takes
the newest frame and processes it. When frames arrive faster than inference, the frame waiting in the
slot is replaced and handed to ``on_drop`` (the node counts it as ``overload``): memory is bounded by
one waiting frame plus the one being processed, whatever the input rate.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Generic, Optional, TypeVar

__all__ = ['LatestSlot', 'InferenceWorker']

logger = logging.getLogger(__name__)

T = TypeVar('T')


class LatestSlot(Generic[T]):
    """A mailbox of capacity one: putting replaces (and returns) the item that was waiting."""

    def __init__(self) -> None:
        self._item: Optional[T] = None
        self._full = False
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: T) -> Optional[T]:
        """Store ``item``; return the item it replaced (None if the slot was empty)."""
        with self._cond:
            replaced = self._item if self._full else None
            self._item, self._full = item, True
            self._cond.notify()
            return replaced

    def take(self, timeout: Optional[float] = None) -> Optional[T]:
        """Remove and return the waiting item; None after ``timeout`` seconds or once closed."""
        with self._cond:
            if not self._full and not self._closed:
                self._cond.wait(timeout)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def clear(self) -> Optional[T]:
        """Empty the slot, returning what was waiting."""
        with self._cond:
            item = self._item if self._full else None
            self._item, self._full = None, False
            return item

    def close(self) -> None:
        """Wake any waiting :meth:`take` (it returns None)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return int(self._full)


class InferenceWorker(Generic[T]):
    """One thread processing the newest submitted item.

    Args:
        process: called on the worker thread for each item; exceptions are never fatal.
        on_drop: called (on the submitting thread) with each item replaced before it was processed.
        on_error: called on the worker thread with the item and the exception ``process`` raised (the node
            logs it throttled with its traceback and counts it); by default it is logged here.
        name: thread name.
        after: called on the worker thread with every item once it is done, processed or failed (a node
            gives freed memory back to the OS there); an exception in it is logged, never fatal.
    """

    def __init__(self, process: Callable[[T], None], on_drop: Callable[[T], None] = lambda item: None,
                 name: str = 'sfm-inference',
                 on_error: Optional[Callable[[T, BaseException], None]] = None,
                 after: Optional[Callable[[T], None]] = None) -> None:
        self._process = process
        self._after = after
        self._on_drop = on_drop
        self._on_error = on_error
        self._slot: LatestSlot[T] = LatestSlot()
        self._stop = threading.Event()
        self._busy = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.processed = 0
        self.errors = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def submit(self, item: T) -> bool:
        """Hand ``item`` to the worker; returns False if an older waiting item was dropped for it."""
        if self._stop.is_set():
            self._on_drop(item)
            return False
        replaced = self._slot.put(item)
        if replaced is not None:
            self._on_drop(replaced)
            return False
        return True

    def queue_depth(self) -> int:
        """Items held: the waiting one (0 or 1) plus the one being processed (0 or 1)."""
        return len(self._slot) + int(self._busy.is_set())

    def waiting(self) -> int:
        """Items waiting in the slot (0 or 1)."""
        return len(self._slot)

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._slot.take(timeout=0.2)
            if item is None:
                continue
            self._busy.set()
            try:
                self._process(item)
                self.processed += 1
            except Exception as exc:  # noqa: BLE001 - the worker must survive anything one frame does
                self.errors += 1
                self._report(item, exc)
            finally:
                self._finish(item)
                self._busy.clear()

    def _finish(self, item: T) -> None:
        if self._after is None:
            return
        try:
            self._after(item)
        except Exception:  # noqa: BLE001 - nor may the after-hook end the thread
            logger.exception('the after-item hook failed')

    def _report(self, item: T, exc: BaseException) -> None:
        if self._on_error is None:
            if not self._stop.is_set():
                logger.error('processing a frame failed', exc_info=exc)
            return
        try:
            self._on_error(item, exc)
        except Exception:  # noqa: BLE001 - a failing reporter must not end the thread either
            logger.exception('reporting a failed frame failed')

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop after the current item; returns True if the thread ended within ``timeout`` seconds."""
        self._stop.set()
        self._slot.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()
