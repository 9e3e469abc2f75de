"""The soak benchmark's figures (``python -m dro_depth.ros.soak``): pure functions over sampled data.

The hang figure once came from how often the collector was read (every 10 s sample), not from the depth
arrivals: a node answering every 0.2 s showed a "longest gap" of 10.7 s. These tests pin the figures to
the data they summarise.
"""
import numpy as np
import pytest

from dro_depth.ros.soak import longest_gap, parse_overrides, rss_growth, summary_lines


def test_longest_gap_is_between_arrivals_not_samples():
    arrivals = list(np.arange(0.2, 30.0, 0.2))             # a depth every 0.2 s, read every 10 s
    gap, newest = 0.0, 0.0
    for lo in (0.0, 10.0, 20.0):                             # three reads of the collector
        g, newest = longest_gap([t for t in arrivals if lo < t <= lo + 10.0], newest)
        gap = max(gap, g)
    assert gap == pytest.approx(0.2) and newest == pytest.approx(arrivals[-1])


def test_longest_gap_sees_a_stall_across_reads_and_ignores_old_arrivals():
    assert longest_gap([12.0, 11.0, 13.5], since=10.0) == (pytest.approx(1.5), 13.5)   # any order
    # a stall spanning a read: 9.9 in the first read, 21.0 in the next one
    g1, newest = longest_gap([9.5, 9.9], since=9.0)
    g2, newest = longest_gap([21.0, 21.2], since=newest)
    assert g2 == pytest.approx(11.1) and newest == 21.2
    assert longest_gap([], since=5.0) == (0.0, 5.0)           # nothing new: no gap closed yet
    assert longest_gap([4.0], since=5.0) == (0.0, 5.0)        # an arrival before `since` is not new


def test_rss_growth_uses_window_medians_after_the_first_minutes():
    t = np.arange(0.0, 1800.0, 10.0)
    rss = 1000.0 + np.where(t < 120, 0.0, 50.0)              # start-up growth, then flat
    rss[(t > 1000) & (t % 30 == 10)] += 30.0                 # transient spikes, every third sample
    growth, raw, peak, slope = rss_growth(t, rss, 120.0)
    assert growth == pytest.approx(0.0, abs=1e-9)             # medians: spikes and start-up do not count
    rss2 = 1000.0 + 0.5 * t / 60.0                           # a real drift of 0.5 MB/min
    growth2, _, _, slope2 = rss_growth(t, rss2, 120.0)
    assert slope2 == pytest.approx(0.5) and growth2 == pytest.approx(0.5 * (1740 - 120 + 50) / 60, rel=0.05)


def _rows(t, **columns):
    return [{'t_s': float(ti), **{k: float(v[i]) for k, v in columns.items()}} for i, ti in enumerate(t)]


def test_summary_attributes_a_step_to_the_part_that_grew_and_measures_rate_wander():
    t = np.arange(0.0, 1810.0, 10.0)
    step = np.where(t > 600, 12.0, 0.0)                      # +12 MB of anonymous memory at minute 10
    published = np.cumsum(np.where(((t - 10) // 60) % 2 == 0, 50.0, 60.0))   # 5 Hz and 6 Hz minutes in turn
    lines = summary_lines(_rows(t, rss_anon_mb=800 + step, rss_file_mb=np.full_like(t, 300.0),
                                rss_shmem_mb=np.full_like(t, 40.0), malloc_in_use_mb=np.full_like(t, 680.0),
                                malloc_free_mb=np.full_like(t, 5.0), published=published))
    memory, rate = lines
    assert 'rss_anon +12.0' in memory and 'rss_file +0.0' in memory and 'malloc_in_use +0.0' in memory
    assert 'private (anon + file) +12.0' in memory
    assert 'mean 5.50 Hz' in rate and 'sd 0.50' in rate and 'min 5.00' in rate and 'max 6.00' in rate


def test_summary_without_memory_parts_says_so():
    t = np.arange(10.0, 400.0, 10.0)
    lines = summary_lines(_rows(t, published=t * 5))           # an old CSV: no part columns
    assert lines[0].endswith('n/a') and 'mean 5.00 Hz' in lines[1] and 'sd 0.00' in lines[1]


def test_overrides_are_typed_and_malformed_ones_refused():
    assert parse_overrides(['metric.threads=1', 'backend=torch', 'metric.enabled=false', 'x=0.5']) == {
        'metric.threads': 1, 'backend': 'torch', 'metric.enabled': False, 'x': 0.5}
    for bad in ('threads', '=3'):
        with pytest.raises(ValueError, match='name=value'):
            parse_overrides([bad])


def test_rate_trend_finds_a_decay_and_not_noise():
    from dro_depth.ros.soak import rate_trend

    rng = np.random.default_rng(0)
    minutes = np.arange(30)
    decaying = 5.0 * (1 - 0.10 * minutes / 29) + rng.normal(0, 0.05, 30)      # -10 % over the run
    change, interval = rate_trend(decaying)
    assert change == pytest.approx(-10.0, abs=1.5) and 0 < interval < 3
    change, interval = rate_trend(5.0 + rng.normal(0, 0.2, 30))                  # 4 % noise, no trend
    assert abs(change) <= interval
    assert rate_trend(np.array([5.0, 5.1, 4.9])) is None


def test_rss_goal_is_judged_on_floors_so_transients_do_not_count_but_a_leak_does():
    from dro_depth.ros.soak import goals

    t = np.arange(10.0, 1810.0, 10.0)
    late = t > 1000                                          # transient 3.7 MB buffers caught in late reads
    instant = 1200.0 + np.where(late & (np.arange(len(t)) % 3 != 0), 3.7, 0.0) + np.where(late, 2.0, 0.0)
    rows = _rows(t, rss_mb=instant, rss_floor_mb=np.full_like(t, 1190.0), output_hz=np.full_like(t, 5.0))
    result = {'rows': rows, 'hang_s': 0.5}
    rss_goal = goals(result, 30.0, 10.0)[0]
    assert rss_goal[2] and '+0.0 MB' in rss_goal[1] and 'instant samples +5.7' in rss_goal[1], rss_goal
    leak = 1190.0 + 0.3 * t / 60.0                           # the floor itself rises 0.3 MB/min: a leak
    rows = _rows(t, rss_mb=leak + 4.0, rss_floor_mb=leak, output_hz=np.full_like(t, 5.0))
    assert not goals({'rows': rows, 'hang_s': 0.5}, 30.0, 10.0)[0][2]


def test_images_lost_in_dds_are_shown_but_are_not_a_node_goal():
    from dro_depth.ros.soak import goals

    t = np.arange(10.0, 400.0, 10.0)
    rows = _rows(t, rss_mb=np.full_like(t, 1000.0), output_hz=np.full_like(t, 5.0))
    books = {'received': 997, 'processed': 200, 'published': 200, 'dropped_total': 797, 'pending': 0,
             'balance': 0, 'dropped_internal_error': 0}
    table = goals({'rows': rows, 'hang_s': 0.5, 'books': books, 'sent': 1000, 'alive': True,
                   'returncode': 0, 'duplicates': 0, 'depth_received': 200}, 6.5, 10.0)
    transport = [g for g in table if 'best-effort DDS' in g[0]]
    assert transport == [(transport[0][0], '3 of 1000 sent', None)]
    assert all(ok for _, _, ok in table if ok is not None)                 # the node's goals all hold
