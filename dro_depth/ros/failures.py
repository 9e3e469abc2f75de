"""How a node reports a frame it could not use: one rule for every node skin.

* Bad input (a :class:`~dro_depth.errors.DroDepthError` or a check that failed): counted under its reason in
  /diagnostics and logged as a throttled warning.
* Anything else is a bug: counted as ``internal_error`` and logged, throttled, with its traceback through the
  node's logger (on /rosout), unless the worker is stopping (shutdown is not a bug to report).
"""
from __future__ import annotations

import traceback
from typing import Any

from .diagnostics import LOG_THROTTLE_S

__all__ = ['report_bad_input', 'report_internal_error']


def report_bad_input(node: Any, stats: Any, reason: str, detail: str, what: str = 'frame') -> None:
    """Count ``reason`` in ``stats`` and log ``'<what> skipped (<reason>): <detail>'`` throttled."""
    stats.drop(reason, detail)
    node.get_logger().warning(f'{what} skipped ({reason}): {detail}', throttle_duration_sec=LOG_THROTTLE_S)


def report_internal_error(node: Any, stats: Any, stopping: bool, stamp_ns: int, exc: BaseException) -> None:
    """Count a bug on the input stamped ``stamp_ns`` as ``internal_error`` and log it with its traceback."""
    stats.drop('internal_error', f'{type(exc).__name__}: {exc}')
    if stopping:
        return
    trace = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    node.get_logger().error(f'internal error on the frame at {stamp_ns} ns (counted in /diagnostics as '
                            f'internal_error; please report):\n{trace}', throttle_duration_sec=LOG_THROTTLE_S)
