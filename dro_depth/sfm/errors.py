"""The streaming estimator's input errors (all :class:`~dro_depth.errors.DroDepthError`)."""
from __future__ import annotations

from dro_depth.errors import DroDepthError

__all__ = ['InputError', 'StampError', 'DuplicateStampError']


class InputError(DroDepthError):
    """A frame given to the estimator is unusable (wrong type, shape, size or stamp)."""


class StampError(InputError):
    """A stamp is not a finite, non-negative time."""


class DuplicateStampError(StampError):
    """A frame with this stamp was already accepted (a duplicate, or a stale re-delivery)."""
