"""Indoor/outdoor head routing with hysteresis."""
import math

import numpy as np
import pytest

from dro_depth.metric.routing import RouteHysteresis, RoutingError


def _feed(router, p_outdoor):
    return [router.update([1.0 - p, p]) for p in p_outdoor]


def test_border_sequence_does_not_flip_flop():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.45, 0.55, 500)
    routes = _feed(RouteHysteresis(), p)
    argmax = np.where(p > 0.5, 'outdoor', 'indoor')
    assert np.sum(argmax[1:] != argmax[:-1]) > 100          # the raw router flips constantly ...
    assert len(set(routes)) == 1                              # ... the hysteresis never does


def test_sustained_change_switches_once_after_a_few_frames():
    router = RouteHysteresis(margin=0.15, min_consecutive=5, smoothing=0.3)
    routes = _feed(router, [0.2] * 50 + [0.8] * 50)
    assert routes[49] == 'indoor' and routes[-1] == 'outdoor'
    first = routes.index('outdoor')
    assert 50 + 5 <= first <= 50 + 12                         # not before the dwell, not much later
    assert router.switch_count == 1 and router.head == 'kitti'
    assert router.probability == pytest.approx(0.8, abs=0.01)
    # Noisy but sustained evidence also switches exactly once (back to indoor).
    rng = np.random.default_rng(1)
    _feed(router, np.clip(rng.normal(0.25, 0.12, 100), 0.0, 1.0))
    assert router.route == 'indoor' and router.switch_count == 2


def test_brief_spikes_do_not_switch():
    router = RouteHysteresis()
    _feed(router, ([0.1] * 20 + [0.97] * 3) * 10)
    assert router.route == 'indoor' and router.switch_count == 0


def test_first_observation_picks_argmax_and_route_is_none_before():
    router = RouteHysteresis()
    assert router.route is None and math.isnan(router.probability)
    assert router.update({'indoor': 0.3, 'outdoor': 0.7}) == 'outdoor'
    assert RouteHysteresis().update({'nyu': 0.9, 'kitti': 0.1}) == 'indoor'


def test_forced_domains_ignore_the_router():
    router = RouteHysteresis(domain='indoor')
    assert router.route == 'indoor'
    _feed(router, [0.99] * 50)
    assert router.route == 'indoor' and router.switch_count == 0
    assert router.p_outdoor > 0.95                            # still reported for diagnostics
    assert router.probability < 0.05
    router.domain = 'auto'
    _feed(router, [0.99] * 10)
    assert router.route == 'outdoor' and router.switch_count == 1
    router.domain = 'outdoor'
    _feed(router, [0.0] * 30)
    assert router.route == 'outdoor'
    assert router.diagnostics()['domain'] == 'outdoor'


def test_logits_are_softmaxed():
    router = RouteHysteresis()
    assert router.update_logits([0.2837, 0.4156]) == 'outdoor'  # ZoeDepth NK reference: vote 0.467 / 0.533
    assert router.p_outdoor == pytest.approx(0.5329, abs=1e-3)


@pytest.mark.parametrize('bad, match', [
    (0.7, 'single number'),
    ([0.2, 0.3, 0.5], '2 probabilities'),
    ([0.2, 0.3], 'sum to 1'),
    ([-0.5, 1.5], r'\[0, 1\]'),
    ([float('nan'), 1.0], 'finite'),
    ({'indoor': 0.5, 'street': 0.5}, 'unknown head'),
    ({'indoor': 1.0}, 'both heads'),
    ('abc', 'not numeric'),
])
def test_bad_router_output_is_rejected(bad, match):
    with pytest.raises(RoutingError, match=match):
        RouteHysteresis().update(bad)


def test_bad_settings_are_rejected():
    with pytest.raises(RoutingError, match='domain'):
        RouteHysteresis(domain='underwater')
    with pytest.raises(RoutingError, match='margin'):
        RouteHysteresis(margin=0.6)
    with pytest.raises(RoutingError, match='min_consecutive'):
        RouteHysteresis(min_consecutive=0)
    with pytest.raises(RoutingError, match='smoothing'):
        RouteHysteresis(smoothing=0.0)
    with pytest.raises(RoutingError, match='logits'):
        RouteHysteresis().update_logits([1.0, float('inf')])
