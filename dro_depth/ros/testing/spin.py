"""A node built in this process, in its own rclpy context, spun on a background thread (tests, embedding).

    with spinning(lambda ctx: SfmNode(estimator=est, context=ctx)) as node:
        ...                                   # talk to it over DDS from another context
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

__all__ = ['spinning']


@contextmanager
def spinning(build: Callable[[Any], Any]) -> Iterator[Any]:
    """Yield ``build(context)`` spun by a single-threaded executor; on exit the executor, the node and the
    context are shut down and the thread joined (bounded)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = build(ctx)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        try:
            yield node
        finally:
            executor.shutdown(timeout_sec=2.0)
            node.destroy_node()
            thread.join(5.0)
    finally:
        rclpy.try_shutdown(context=ctx)
