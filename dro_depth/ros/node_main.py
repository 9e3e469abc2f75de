"""The process lifetime every node executable shares: Fast DDS profile, rclpy init, spin, clean shutdown.

Exit codes: 0 on SIGINT / SIGTERM / external shutdown, 2 when the node refuses to start for a reason the user
can fix (a :class:`~dro_depth.errors.DroDepthError`: bad parameters, device or checkpoint; or a missing
file). Anything else is a bug and propagates with its traceback.
"""
from __future__ import annotations

import logging
from typing import Callable, List, Optional

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from dro_depth.errors import DroDepthError

from .transport import ensure_fastdds_profile

__all__ = ['run_node']


def run_node(factory: Callable[[], Node], name: str, args: Optional[List[str]] = None) -> int:
    """Create the node with ``factory`` and spin it until shutdown; returns the process exit code."""
    ensure_fastdds_profile()
    logging.basicConfig(level=logging.INFO, format='[%(levelname)s] [%(name)s]: %(message)s')
    rclpy.init(args=args)
    node: Optional[Node] = None
    code = 0
    try:
        node = factory()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (DroDepthError, FileNotFoundError) as exc:   # ParameterError, a bad device or checkpoint file
        rclpy.logging.get_logger(name).fatal(str(exc))
        code = 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
