"""Indoor/outdoor route between the metric model's heads, with hysteresis.

ZoeDepth NK has two metric heads, 'indoor' (trained on NYU) and 'outdoor' (KITTI), and a router whose
softmax gives per-frame probabilities (index 0 = NYU/indoor, 1 = KITTI/outdoor). Taking the argmax every
frame makes a scene on the border (a doorway, a car park) flip heads -- and the metric depth, and so the
DRO scale -- from frame to frame. :class:`RouteHysteresis` damps that.

Policy (two stages):

1. Smoothing: an exponential moving average of the router's log-odds
   ``L <- (1 - alpha) L + alpha logit(p_outdoor)``; the smoothed probability is ``sigmoid(L)``. The first
   observation initialises ``L`` and picks the route by argmax.
2. Dwell: the route switches only when the other head's SMOOTHED probability exceeds
   ``0.5 + margin`` on ``min_consecutive`` consecutive observations. A sequence wandering around 0.5
   (|p - 0.5| < margin) never switches; a sustained change switches after a few frames.

``domain`` forces a head ('indoor' or 'outdoor'): the route is then fixed and the router only feeds the
smoothed probability shown in diagnostics. 'auto' (default) follows the router with hysteresis.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Dict, Mapping, Optional

import numpy as np

from dro_depth.errors import DroDepthError

__all__ = ['RoutingError', 'RouteHysteresis', 'ROUTES', 'DOMAINS', 'HEADS']

logger = logging.getLogger(__name__)

ROUTES = ('indoor', 'outdoor')            # index order of the router's output (ZoeDepth NK: nyu, kitti)
DOMAINS = ('auto',) + ROUTES
HEADS = {'indoor': 'nyu', 'outdoor': 'kitti'}
_ALIASES = {'indoor': 'indoor', 'nyu': 'indoor', 'outdoor': 'outdoor', 'kitti': 'outdoor'}
_P_CLIP = 1e-6


class RoutingError(DroDepthError):
    """Bad router output or routing setting."""


def _logit(p: float) -> float:
    p = min(max(p, _P_CLIP), 1.0 - _P_CLIP)
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class RouteHysteresis:
    """Per-frame indoor/outdoor route with smoothing and a dwell count (policy in the module docstring).

    Args:
        domain: 'auto' | 'indoor' | 'outdoor' (forced).
        margin: the other head must reach ``0.5 + margin`` (smoothed), in (0, 0.5).
        min_consecutive: observations in a row above that before switching, >= 1.
        smoothing: EMA weight of the newest log-odds, in (0, 1]; 1 = no smoothing.
    """

    def __init__(self, domain: str = 'auto', margin: float = 0.15, min_consecutive: int = 5,
                 smoothing: float = 0.3) -> None:
        if not (isinstance(margin, (int, float)) and 0.0 < margin < 0.5):
            raise RoutingError(f'margin must be in (0, 0.5), got {margin!r}')
        if isinstance(min_consecutive, bool) or not isinstance(min_consecutive, int) or min_consecutive < 1:
            raise RoutingError(f'min_consecutive must be an integer >= 1, got {min_consecutive!r}')
        if not (isinstance(smoothing, (int, float)) and 0.0 < smoothing <= 1.0):
            raise RoutingError(f'smoothing must be in (0, 1], got {smoothing!r}')
        self.margin = float(margin)
        self.min_consecutive = min_consecutive
        self.smoothing = float(smoothing)
        self._domain = 'auto'
        self._route: Optional[str] = None
        self._L: Optional[float] = None        # smoothed log-odds of 'outdoor'
        self.pending = 0                       # consecutive observations favouring the other head
        self.switch_count = 0
        self.n_updates = 0
        self.domain = domain

    # -------------------------------------------------------------- settings
    @property
    def domain(self) -> str:
        return self._domain

    @domain.setter
    def domain(self, value: str) -> None:
        if value not in DOMAINS:
            raise RoutingError(f'domain must be one of {DOMAINS}, got {value!r}')
        self._domain = value
        self.pending = 0
        if value != 'auto':
            self._route = value
        elif self._route is None and self._L is not None:
            self._route = 'outdoor' if self._L > 0 else 'indoor'

    # -------------------------------------------------------------- read-out
    @property
    def route(self) -> Optional[str]:
        """'indoor' or 'outdoor'; None in 'auto' before the first observation."""
        return self._route

    @property
    def head(self) -> Optional[str]:
        """The ZoeDepth head name of the route ('nyu' / 'kitti')."""
        return None if self._route is None else HEADS[self._route]

    @property
    def p_outdoor(self) -> float:
        """Smoothed probability of 'outdoor' (NaN before the first observation)."""
        return float('nan') if self._L is None else _sigmoid(self._L)

    @property
    def probability(self) -> float:
        """Smoothed probability of the current route (NaN when unknown)."""
        if self._route is None or self._L is None:
            return float('nan')
        p = _sigmoid(self._L)
        return p if self._route == 'outdoor' else 1.0 - p

    def diagnostics(self) -> Dict[str, Any]:
        return {'route': self._route or '', 'head': self.head or '', 'domain': self._domain,
                'probability': self.probability, 'p_outdoor_smoothed': self.p_outdoor,
                'switches': self.switch_count, 'pending': self.pending, 'updates': self.n_updates}

    # -------------------------------------------------------------- input
    @staticmethod
    def _p_outdoor(probs: Any) -> float:
        if isinstance(probs, (bool, int, float, np.floating)) \
                or (isinstance(probs, np.ndarray) and probs.ndim == 0):
            raise RoutingError('router output must name both heads: a mapping {"indoor": p, "outdoor": q} '
                               'or a pair [p_indoor, p_outdoor], got a single number')
        if isinstance(probs, Mapping):
            vals: Dict[str, float] = {}
            for key, value in probs.items():
                if key not in _ALIASES:
                    raise RoutingError(f'unknown head {key!r} in router output; expected {sorted(_ALIASES)}')
                vals[_ALIASES[key]] = value
            if set(vals) != set(ROUTES):
                raise RoutingError(f'router output must give both heads {ROUTES}, got {sorted(probs)}')
            arr = [vals['indoor'], vals['outdoor']]
        else:
            arr = probs
        try:
            p = np.asarray(arr, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise RoutingError(f'router output is not numeric: {probs!r}') from None
        if p.size != 2:
            raise RoutingError(f'router output must have 2 probabilities [indoor, outdoor], got {p.size}')
        if not np.all(np.isfinite(p)):
            raise RoutingError(f'router probabilities must be finite, got {p.tolist()}')
        if np.any(p < 0) or np.any(p > 1):
            raise RoutingError(f'router probabilities must be in [0, 1], got {p.tolist()} '
                               '(logits? use update_logits)')
        if abs(p.sum() - 1.0) > 1e-3:
            raise RoutingError(f'router probabilities must sum to 1, got {p.tolist()} (sum {p.sum():.4f})')
        return float(p[1] / p.sum())

    def update_logits(self, logits: Any) -> Optional[str]:
        """Like :meth:`update` from the router's 2 logits [indoor, outdoor] (softmax applied here)."""
        try:
            z = np.asarray(logits, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise RoutingError(f'router logits are not numeric: {logits!r}') from None
        if z.size != 2 or not np.all(np.isfinite(z)):
            raise RoutingError(f'router logits must be 2 finite values [indoor, outdoor], got {z.tolist()}')
        e = np.exp(z - z.max())
        return self.update(e / e.sum())

    def update(self, probs: Any) -> Optional[str]:
        """Feed one frame's router probabilities; returns the route to use for this frame.

        Args:
            probs: ``{'indoor': p, 'outdoor': q}`` (aliases 'nyu', 'kitti') or ``[p_indoor, p_outdoor]``,
                summing to 1.
        """
        p_out = self._p_outdoor(probs)
        lo = _logit(p_out)
        self.n_updates += 1
        if self._L is None:
            self._L = lo
            if self._domain == 'auto':
                self._route = 'outdoor' if p_out > 0.5 else 'indoor'
            return self._route
        self._L = (1.0 - self.smoothing) * self._L + self.smoothing * lo
        if self._domain != 'auto':
            return self._route
        p_sm = _sigmoid(self._L)
        p_other = 1.0 - p_sm if self._route == 'outdoor' else p_sm
        if p_other > 0.5 + self.margin:
            self.pending += 1
            if self.pending >= self.min_consecutive:
                old = self._route
                self._route = 'indoor' if old == 'outdoor' else 'outdoor'
                self.pending = 0
                self.switch_count += 1
                logger.info('metric head switched %s -> %s (smoothed p=%.2f)', old, self._route, p_other)
        else:
            self.pending = 0
        return self._route
