"""Exact-stamp pairing of four streams (left/right image + left/right CameraInfo) from three
:class:`~dro_depth.ros.pairing.ExactTimePairer`: image+info per side, then left pair + right pair."""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

from .pairing import ExactTimePairer

__all__ = ['StereoPairer']

Quad = Tuple[Any, Any, Any, Any]


class StereoPairer:
    """Calls back with ``(left, left_info, right, right_info)`` once all four share one stamp.

    Args:
        queue_size: per-stream buffer while waiting for partners.
        on_unpaired: ``(message, reason)`` for each image (or image pair) evicted without partners.
    """

    def __init__(self, queue_size: int = 10,
                 on_unpaired: Callable[[Any, str], None] = lambda msg, reason: None) -> None:
        self._on_unpaired = on_unpaired
        self.left = ExactTimePairer(queue_size, lambda m, r: on_unpaired(m, f'left image: {r}'))
        self.right = ExactTimePairer(queue_size, lambda m, r: on_unpaired(m, f'right image: {r}'))
        self.both = ExactTimePairer(queue_size, self._unmatched_side)

    def _unmatched_side(self, left_pair: Any, reason: str) -> None:
        reason = reason.replace('CameraInfo', 'right image + camera_info')
        self._on_unpaired(left_pair[0], f'left image: {reason}')

    def _joined(self, stamp_ns: int, side: str, pair: Optional[Tuple[Any, Any]]) -> Optional[Quad]:
        if pair is None:
            return None
        joined = self.both.add_image(stamp_ns, pair) if side == 'left' else self.both.add_info(stamp_ns, pair)
        if joined is None:
            return None
        (left, left_info), (right, right_info) = joined
        return left, left_info, right, right_info

    def add(self, side: str, kind: str, stamp_ns: int, msg: Any) -> Optional[Quad]:
        """Add a message: ``side`` 'left'/'right', ``kind`` 'image'/'info'. Returns the quad when complete."""
        pairer = self.left if side == 'left' else self.right
        pair = pairer.add_image(stamp_ns, msg) if kind == 'image' else pairer.add_info(stamp_ns, msg)
        return self._joined(stamp_ns, side, pair)

    def pending(self) -> int:
        """Images still waiting for partners."""
        return self.left.pending_images + self.right.pending_images + self.both.pending_images
