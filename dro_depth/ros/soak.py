"""Soak benchmark: the installed ``sfm_node`` fed a camera stream for a long time, sampled as it goes.

    python -m dro_depth.ros.soak --minutes 30 --rate 30 --out soak/

Every ``--period`` seconds it writes a CSV row: node RSS, input and output rate, publish -> depth latency
p50/p95 (client side), drops per minute by reason, and the machine load (/proc/loadavg); at the end a PNG of
the same and a table of the goals:

* RSS growth after the first 2 minutes <= 5 MB: the median of the last minute's rows minus the median of
  the minute after minute 2, each row holding the *floor* of its period (the least of reads about every
  second). One read lands anywhere in a frame's transient buffers (at 640x480 a 3.7 MB mmapped block is
  alive in about half of them, seen in ``smaps.csv``), which moved instant-sample medians by several MB;
  a leak raises the floor, a transient does not. The raw end - start, the peak, the least-squares slope and
  the instant-sample figure are printed beside it;
* output rate of the last 5 minutes within 5 % of the first 5;
* no hang (a depth message at least every ``--hang`` seconds while streaming), the node alive;
* nothing lost that was accepted: every processed frame published, no ``internal_error``, and
  ``received == processed + dropped + pending`` from /diagnostics. Images the best-effort camera QoS loses
  in DDS before the node (a few in 55000 at 30 Hz on 2 busy cores) are counted and printed, not judged:
  the node never saw them.

Beside the total RSS every row has its anonymous / file / shared-memory parts (/proc) and malloc's own
in-use and free bytes (the node's /diagnostics, glibc), and the run ends with the growth of each, so a step
in RSS is attributed to a kind of memory; ``--smaps`` also writes ``smaps.csv`` (every mapping with at least
256 kB resident, each sample) to name the mapping. ``--set name=value`` overrides a node parameter (repeat
it) for A/B runs against the defaults.

Exits 1 when a goal or an invariant fails, 0 otherwise.
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import signal
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import yaml

from dro_depth.bench.procmem import mappings, node_rss_mb, process_memory

__all__ = ['main', 'node_rss_mb', 'accounting', 'parse_overrides']

#: The memory columns whose growth is reported beside the total (RSS parts, then malloc's books).
MEMORY_PARTS = ['rss_anon_mb', 'rss_file_mb', 'rss_shmem_mb', 'malloc_in_use_mb', 'malloc_free_mb']
CSV_FIELDS = ['t_s', 'rss_mb', 'input_hz', 'output_hz', 'latency_p50_ms', 'latency_p95_ms',
              'dropped_per_min', 'dropped_overload', 'dropped_other', 'received', 'published', 'load1',
              'load5', 'cpu_steal_pct'] + MEMORY_PARTS + ['rss_floor_mb', 'private_floor_mb', 'inference_p50_ms',
                                                         'publish_p50_ms', 'metric_latency_p50_ms',
                                                         'frames_tracking', 'frames_initializing', 'frames_lost']
PROBE_PERIOD = 1.0      # s between memory reads inside a sample period (the floors are their minimum)
SMAPS_MIN_KB = 256


def parse_overrides(items: List[str]) -> Dict[str, object]:
    """``['metric.threads=1', 'backend=torch']`` -> parameter values (YAML scalars: ints, floats, bools)."""
    out: Dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition('=')
        if not sep or not name.strip():
            raise ValueError(f'--set wants name=value, got {item!r}')
        out[name.strip()] = yaml.safe_load(value)
    return out


def accounting(d: Dict[str, str]) -> Dict[str, int]:
    """The node's books from diagnostics values: received, processed, dropped by reason, pending.

    ``pending`` is what the node holds and has not decided yet: frames waiting for or in inference and
    images waiting for their CameraInfo. ``balance`` is ``received - processed - dropped - pending``; it is
    0 when every received image is accounted for exactly once.
    """
    from .stats import DROP_REASONS

    books = {k: int(float(d.get(k, 0) or 0)) for k in ('received', 'processed', 'published', 'dropped_total')}
    books['pending'] = sum(int(float(d.get(k, 0) or 0)) for k in
                           ('queue_depth', 'in_inference', 'pending_unpaired'))
    for reason in DROP_REASONS:
        books[f'dropped_{reason}'] = int(float(d.get(f'dropped_{reason}', 0) or 0))
    books['balance'] = books['received'] - books['processed'] - books['dropped_total'] - books['pending']
    return books


def _frames(n: int, height: int, width: int):
    from dro_depth.data.synthetic import generate_sequence
    seq = generate_sequence('indoor', seed=7, n_frames=n, height=height, width=width)
    return seq.images, seq.K


def _loadavg() -> List[float]:
    try:
        return [float(v) for v in Path('/proc/loadavg').read_text().split()[:3]]
    except OSError:
        return [float('nan')] * 3


def _cpu_times() -> Tuple[float, float]:
    """(all, steal) CPU time of the machine so far in clock ticks (/proc/stat); steal is time a virtual
    machine's CPUs were ready but the host ran something else, so a rate dip with steal is not the node's."""
    try:
        fields = [float(v) for v in Path('/proc/stat').read_text().split('\n', 1)[0].split()[1:]]
        return sum(fields[:8]), fields[7]
    except (OSError, ValueError, IndexError):
        return float('nan'), float('nan')


class _Sampler:
    """Turns the collector's depth arrivals and the node's diagnostics into one CSV row per period."""

    def __init__(self, client, pid: int, sent: Dict[int, float], smaps=None) -> None:
        self.client, self.pid, self.sent = client, pid, sent
        self.smaps = smaps                  # csv.writer for per-mapping rows, or None
        self.floors = [float('inf'), float('inf')]      # least RSS, least anon + file since the last row
        self.last_probe = 0.0
        self.seen: Dict[int, int] = {}      # depth stamp -> times received
        self.last_t = time.monotonic()
        self.last_count = 0
        self.last_received = 0
        self.last_drops = (0, 0)
        self.last_arrival = time.monotonic()
        self.last_cpu = _cpu_times()
        self.max_gap = 0.0                  # longest time between consecutive depth arrivals (s)

    def hang(self, now: float) -> float:
        """The longest time without a depth so far: closed gaps, and the one open at ``now``."""
        return max(self.max_gap, now - self.last_arrival)

    def probe(self) -> None:
        """Read the node's memory (at most every :data:`PROBE_PERIOD`): a row's floors are the least of these
        reads, the memory that stays between frames; a single read can land inside a frame's transient
        buffers (a 640x480 frame holds several MB for a few hundred ms)."""
        now = time.monotonic()
        if now - self.last_probe < PROBE_PERIOD:
            return
        self._fold(process_memory(self.pid), now)

    def _fold(self, mem: Dict[str, float], now: float) -> None:
        """Lower the floors with one reading of :func:`process_memory` taken at ``now``."""
        self.last_probe = now
        self.floors = [min(self.floors[0], mem['rss_mb']),
                       min(self.floors[1], mem['rss_anon_mb'] + mem['rss_file_mb'])]

    def row(self, t0: float) -> Dict[str, float]:
        from dro_depth.ros.conversions import stamp_to_ns
        now = time.monotonic()
        dt = max(now - self.last_t, 1e-6)
        lat, arrivals = [], []
        for r in self.client.outputs.get('depth'):
            if r.t <= self.last_t:
                continue
            stamp = stamp_to_ns(r.msg.header.stamp)
            self.seen[stamp] = self.seen.get(stamp, 0) + 1
            if stamp in self.sent:
                lat.append((r.t - self.sent.pop(stamp)) * 1e3)
            arrivals.append(r.t)
        gap, self.last_arrival = longest_gap(arrivals, self.last_arrival)
        self.max_gap = max(self.max_gap, gap)
        count = self.client.outputs.count('depth')
        d = self.client.diagnostics()
        books = accounting(d) if d else {'received': 0, 'published': 0, 'dropped_total': 0,
                                         'dropped_overload': 0}
        drops = (books['dropped_overload'], books['dropped_total'] - books['dropped_overload'])
        load = _loadavg()
        cpu = _cpu_times()
        ticks = cpu[0] - self.last_cpu[0]
        steal = (cpu[1] - self.last_cpu[1]) / ticks * 100 if ticks > 0 else float('nan')
        self.last_cpu = cpu
        mem = process_memory(self.pid)
        self._fold(mem, now)                               # this read counts towards the period's floors
        floors, self.floors = self.floors, [float('inf'), float('inf')]
        row = {
            't_s': now - t0, 'rss_mb': mem['rss_mb'],
            'input_hz': (books['received'] - self.last_received) / dt,
            'output_hz': (count - self.last_count) / dt,
            'latency_p50_ms': float(np.percentile(lat, 50)) if lat else float('nan'),
            'latency_p95_ms': float(np.percentile(lat, 95)) if lat else float('nan'),
            'dropped_per_min': (sum(drops) - sum(self.last_drops)) * 60.0 / dt,
            'dropped_overload': drops[0], 'dropped_other': drops[1],
            'received': books['received'], 'published': books['published'],
            'load1': load[0], 'load5': load[1], 'cpu_steal_pct': steal,
            **{k: mem[k] for k in MEMORY_PARTS[:3]},
            **{k: float(d.get(k, 'nan')) if d else float('nan') for k in MEMORY_PARTS[3:]},
            'rss_floor_mb': floors[0], 'private_floor_mb': floors[1],
            **{k: float(d.get(k, 'nan')) if d else float('nan') for k in ('inference_p50_ms', 'publish_p50_ms',
                                                                           'metric_latency_p50_ms')},
            **{k: int(d.get(k, 0)) if d else 0 for k in ('frames_tracking', 'frames_initializing',
                                                          'frames_lost')},
        }
        if self.smaps is not None:
            for m in mappings(self.pid, SMAPS_MIN_KB):
                self.smaps.writerow([f'{now - t0:.1f}', m.key, m.size_kb, m.rss_kb])
        self.last_t, self.last_count, self.last_drops = now, count, drops
        self.last_received = books['received']
        return row


def _warm_up(client, images, K, timeout: float) -> int:
    """Offer frames until depth arrives and the engines serve (not measured); returns frames sent."""
    i = 0
    deadline = time.monotonic() + timeout
    while client.outputs.count('depth') == 0 and time.monotonic() < deadline:
        client.camera.publish(images[i % len(images)], K, time.time_ns())
        i += 1
        client.outputs.wait(lambda o: o.count('depth') > 0, 0.2)
    while time.monotonic() < deadline:
        v = client.diagnostics()
        if v and v.get('dro_engines_compiling', '0') == '0' and v.get('metric_engines_compiling', '0') == '0':
            break
        client.camera.publish(images[i % len(images)], K, time.time_ns())
        i += 1
        time.sleep(0.1)
    return i


def run_soak(args: argparse.Namespace) -> Dict[str, object]:
    """Start the node, stream for ``args.minutes`` at ``args.rate`` Hz, sample every ``args.period`` s."""
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.testing.process import NodeProcess

    width, height = (int(v) for v in args.input.lower().split('x'))
    images, K = _frames(40, height, width)
    params = {'diagnostics_period': 1.0, **getattr(args, 'overrides', {})}
    proc = NodeProcess(params).start()
    smaps_file = None
    client = SfmClient(topics=['depth', '/diagnostics'], keep=2000)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: List[Dict[str, float]] = []
    result: Dict[str, object] = {'rows': rows, 'log': '', 'hang_s': 0.0}
    try:
        if not client.wait_for_node(args.timeout):
            raise RuntimeError('sfm_node did not start:\n' + proc.log()[-2000:])
        i = _warm_up(client, images, K, args.timeout)
        t_w = time.monotonic()
        while time.monotonic() - t_w < args.warmup:         # the rate settles (late engine compiles)
            client.camera.publish(images[i % len(images)], K, time.time_ns())
            i += 1
            time.sleep(1.0 / args.rate)
        sent: Dict[int, float] = {}
        smaps = None
        if getattr(args, 'smaps', False):
            smaps_file = open(out_dir / 'smaps.csv', 'w', newline='')
            smaps = csv.writer(smaps_file)
            smaps.writerow(['t_s', 'mapping', 'size_kb', 'rss_kb'])
        sampler = _Sampler(client, proc.proc.pid, sent, smaps)
        client.outputs.wait(lambda o: False, 1.0)
        sampler.row(time.monotonic())                       # baseline (not written)
        n_sent_before = accounting(client.diagnostics())['received']
        n_sent = 0
        t0 = time.monotonic()
        t_next, t_sample = t0, t0 + args.period
        with open(out_dir / 'soak.csv', 'w', newline='') as f:
            writer = csv.DictWriter(f, CSV_FIELDS)
            writer.writeheader()
            while time.monotonic() - t0 < args.minutes * 60 and proc.alive():
                stamp = time.time_ns()
                sent[stamp] = time.monotonic()
                client.camera.publish(images[(i + n_sent) % len(images)], K, stamp)
                n_sent += 1
                t_next += 1.0 / args.rate
                sampler.probe()
                if time.monotonic() >= t_sample:
                    rows.append(sampler.row(t0))
                    writer.writerow({k: f'{v:.3f}' if isinstance(v, float) else v
                                     for k, v in rows[-1].items()})
                    f.flush()
                    t_sample += args.period
                    for stale in [s for s, t in sent.items() if time.monotonic() - t > 60]:
                        del sent[stale]                       # dropped by the node (overload): no depth
                time.sleep(max(0.0, t_next - time.monotonic()))
        t_end = time.monotonic()
        result['alive'] = proc.alive()
        client.outputs.wait(lambda o: False, 3.0)          # the last frames finish
        final = client.wait_diagnostics(lambda v: int(v.get('queue_depth', 1)) == 0
                                        and int(v.get('in_inference', 1)) == 0, 15)
        sampler.row(t0)
        result['hang_s'] = sampler.hang(t_end)             # gaps while streaming, from arrival times
        result['books'] = accounting(final)
        result['sent'] = n_sent + n_sent_before
        result['duplicates'] = sum(1 for n in sampler.seen.values() if n > 1)
        result['depth_received'] = client.outputs.count('depth')
    finally:
        if smaps_file is not None:
            smaps_file.close()
        client.close()
        result['returncode'] = proc.stop(signal.SIGINT, 60)
        result['log'] = proc.log()[-3000:]
    return result


def goals(result: Dict[str, object], minutes: float, hang: float) -> List[tuple]:
    """(goal, measured, ok) for every goal and invariant; ok None marks a figure that is not a goal."""
    rows = result['rows']
    t = np.array([r['t_s'] for r in rows])
    instant = np.array([r['rss_mb'] for r in rows])
    floor = np.array([r.get('rss_floor_mb', float('nan')) for r in rows], dtype=float)
    rss = floor if len(floor) and np.isfinite(floor).all() else instant      # older CSVs: instant samples
    out = np.array([r['output_hz'] for r in rows])
    win = min(5.0, minutes / 3) * 60
    t2 = min(120.0, t[-1] / 3) if len(t) else 0.0
    growth, raw, peak, slope = rss_growth(t, rss, t2)
    first = float(out[t <= win].mean()) if (t <= win).any() else float('nan')
    last = float(out[t >= t[-1] - win].mean()) if len(t) else float('nan')
    change = (last - first) / first * 100 if first > 0 else float('nan')
    books = result.get('books', {})
    instant_growth = rss_growth(t, instant, t2)[0]
    g = [
        ('RSS growth after the first 2 min (1-min medians of 10-s floors) <= 5 MB',
         f'{growth:+.1f} MB (raw end {raw:+.1f}, peak {peak:+.1f}, slope {slope:+.2f} MB/min; instant samples '
         f'{instant_growth:+.1f})', growth <= 5.0),
        (f'output rate last {win / 60:.1f} min vs first {win / 60:.1f} min within 5 %',
         f'{last:.2f} vs {first:.2f} Hz ({change:+.1f} %)', abs(change) <= 5.0),
        (f'no hang: depth at least every {hang:g} s', f'longest gap {float(result["hang_s"]):.1f} s',
         float(result['hang_s']) <= hang),
        ('node alive to the end, clean exit', f'alive {result.get("alive")}, exit {result.get("returncode")}',
         bool(result.get('alive')) and result.get('returncode') == 0),
        ('received == processed + dropped + pending',
         f'{books.get("received")} = {books.get("processed")} + {books.get("dropped_total")} + '
         f'{books.get("pending")} (balance {books.get("balance")})', books.get('balance') == 0),
        ('images lost by best-effort DDS before the node (transport; never accepted)',
         f'{_lost(result.get("sent"), books.get("received"))} of {result.get("sent")} sent', None),
        ('accepted = published, no internal_error',
         f'processed {books.get("processed")}, published {books.get("published")}, '
         f'internal_error {books.get("dropped_internal_error")}',
         books.get('processed') == books.get('published') and books.get('dropped_internal_error') == 0),
        ('no stamp published twice', f'{result.get("duplicates")} duplicated of '
                                     f'{result.get("depth_received")}', result.get('duplicates') == 0),
    ]
    return g


def _lost(sent, received) -> str:
    return str(sent - received) if isinstance(sent, int) and isinstance(received, int) else '?'


def summary_lines(rows: List[Dict[str, float]]) -> List[str]:
    """Where the memory went (growth of each part after minute 2, 1-min medians) and how steady the rate is."""
    t = np.array([r['t_s'] for r in rows])
    t2 = min(120.0, t[-1] / 3) if len(t) else 0.0
    def column(key: str) -> np.ndarray:
        return np.array([r.get(key, float('nan')) for r in rows], dtype=float)

    series = [('rss floor', column('rss_floor_mb')),              # the least of ~1 s reads in each period
              ('private floor', column('private_floor_mb')),
              ('private (anon + file)', column('rss_anon_mb') + column('rss_file_mb')),   # all but DDS shm
              *((key[:-3], column(key)) for key in MEMORY_PARTS)]
    parts = [f'{label} {rss_growth(t, v, t2)[0]:+.1f}' for label, v in series
             if np.isfinite(v[t >= t2]).sum() >= 2]
    lines = ['# memory growth after minute 2 (MB, 1-min medians): ' + (', '.join(parts) or 'n/a')]
    published = np.array([r['published'] for r in rows], dtype=float)
    step = max(1, int(round(60.0 / np.median(np.diff(t))))) if len(t) > 2 else len(t) + 1
    ends = np.arange(step, len(t), step)                # sample indices one minute apart
    per_min = list((published[ends] - published[ends - step]) / (t[ends] - t[ends - step]))
    if len(per_min) >= 2:
        m = float(np.mean(per_min))
        lines.append(f'# output rate per minute: mean {m:.2f} Hz, sd {np.std(per_min):.2f} '
                     f'({np.std(per_min) / m * 100:.1f} %), min {min(per_min):.2f}, max {max(per_min):.2f}')
        trend = rate_trend(np.asarray(per_min))
        if trend is not None:
            lines[-1] += f'; trend over the run {trend[0]:+.1f} % (95 % interval +-{trend[1]:.1f} %)'
    return lines


def rate_trend(per_min: np.ndarray) -> Optional[Tuple[float, float]]:
    """(change, half-width): the least-squares trend of per-minute rates over the run as a change in % of
    the mean, with a 95 % interval from the fit's standard error (minutes taken as independent, so the
    interval is optimistic when the rate wanders slowly); None with fewer than 4 minutes."""
    n = len(per_min)
    if n < 4:
        return None
    x = np.arange(n, dtype=float)
    slope, icept = np.polyfit(x, per_min, 1)
    resid = per_min - (slope * x + icept)
    se = np.sqrt(resid @ resid / (n - 2) / ((x - x.mean()) @ (x - x.mean())))
    span, mean = (n - 1), float(per_min.mean())
    return float(slope * span / mean * 100), float(1.96 * se * span / mean * 100)


def longest_gap(arrivals: List[float], since: float) -> Tuple[float, float]:
    """(longest gap, newest time) of the arrival times ``arrivals`` (any order) following ``since``.

    Every gap between consecutive arrivals counts, the first one from ``since``: an arrival-to-arrival
    measure, so how often the collector is read does not enter the figure.
    """
    times = [since] + sorted(t for t in arrivals if t > since)
    gaps = np.diff(times)
    return (float(gaps.max()) if len(gaps) else 0.0), times[-1]


def rss_growth(t: np.ndarray, rss: np.ndarray, t2: float, window: float = 60.0) -> tuple:
    """(growth, raw end - start, peak - start, slope MB/min) of ``rss`` after ``t2`` seconds.

    ``growth`` compares medians of ``window``-second windows (the first after ``t2``, the last), so one sample
    caught inside a frame's transient allocations does not decide it.
    """
    keep = t >= t2
    t, rss = t[keep], rss[keep]
    if len(t) < 2:
        return (float('nan'),) * 4
    first = float(np.median(rss[t < t[0] + window]))
    last = float(np.median(rss[t > t[-1] - window]))
    slope = float(np.polyfit(t / 60.0, rss, 1)[0])
    return last - first, float(rss[-1] - rss[0]), float(rss.max() - rss[0]), slope


def plot(rows: List[Dict[str, float]], path: Path, title: str) -> Optional[Path]:
    """RSS, rates, latency and drops over time as one PNG (None without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    t = np.array([r['t_s'] for r in rows]) / 60
    fig, ax = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    ax[0].plot(t, [r['rss_mb'] for r in rows], label='RSS')
    for key, label in (('rss_anon_mb', 'anonymous'), ('malloc_in_use_mb', 'malloc in use')):
        if any(np.isfinite(r.get(key, float('nan'))) for r in rows):
            ax[0].plot(t, [r.get(key, float('nan')) for r in rows], label=label)
    ax[0].set_ylabel('node memory (MiB)')
    ax[0].legend()
    ax[1].plot(t, [r['input_hz'] for r in rows], label='input')
    ax[1].plot(t, [r['output_hz'] for r in rows], label='depth out')
    ax[1].set_ylabel('rate (Hz)')
    ax[1].legend()
    ax[2].plot(t, [r['latency_p50_ms'] for r in rows], label='p50')
    ax[2].plot(t, [r['latency_p95_ms'] for r in rows], label='p95')
    ax[2].set_ylabel('publish -> depth (ms)')
    ax[2].legend()
    ax[3].plot(t, [r['dropped_per_min'] for r in rows], label='drops / min')
    ax3 = ax[3].twinx()
    ax3.plot(t, [r['load1'] for r in rows], color='grey', alpha=0.5, label='load1')
    ax3.set_ylabel('loadavg (1 min)')
    ax[3].set_ylabel('drops / min')
    ax[3].set_xlabel('minutes')
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m dro_depth.ros.soak',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--rate', type=float, default=30.0, help='camera rate (Hz)')
    parser.add_argument('--input', default='640x480', help='image WIDTHxHEIGHT')
    parser.add_argument('--period', type=float, default=10.0, help='seconds between samples')
    parser.add_argument('--hang', type=float, default=10.0, help='longest acceptable gap between depths (s)')
    parser.add_argument('--warmup', type=float, default=30.0, help='seconds streamed before sampling')
    parser.add_argument('--timeout', type=float, default=300.0, help='start-up / warm-up limit (s)')
    parser.add_argument('--out', default='soak', help='folder for soak.csv and soak.png')
    parser.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                        help='node parameter override (repeatable), e.g. --set metric.threads=1')
    parser.add_argument('--smaps', action='store_true',
                        help=f'also write smaps.csv: every mapping with >= {SMAPS_MIN_KB} kB resident, each sample')
    args = parser.parse_args(argv)
    try:
        args.overrides = parse_overrides(args.set)
    except ValueError as exc:
        parser.error(str(exc))

    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(150, 230)))
    from .transport import ensure_fastdds_profile
    ensure_fastdds_profile()
    import torch
    machine = (f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
               f'torch {torch.__version__}, '
               f'load at start {" ".join(f"{v:.2f}" for v in _loadavg())}')
    setting = ', '.join(f'{k}={v}' for k, v in args.overrides.items()) or 'node defaults'
    print(f'# soak: {args.minutes:g} min at {args.rate:g} Hz, {args.input}, {setting}; {machine}',
          flush=True)
    result = run_soak(args)
    rows = result['rows']
    if not rows:
        print('no samples taken; node log:\n' + str(result['log']))
        return 1
    png = plot(rows, Path(args.out) / 'soak.png',
               f'sfm_node soak {args.minutes:g} min at {args.rate:g} Hz ({args.input}); {machine}')
    load = np.array([r['load1'] for r in rows])
    lat50 = np.nanmedian([r['latency_p50_ms'] for r in rows])
    lat95 = np.nanmedian([r['latency_p95_ms'] for r in rows])
    print(f'# samples {len(rows)}, load1 mean {load.mean():.2f} '
          f'(min {load.min():.2f}, max {load.max():.2f}); '
          f'latency p50 {lat50:.0f} ms, p95 {lat95:.0f} ms (median over samples); '
          f'cpu steal {np.nanmean([r["cpu_steal_pct"] for r in rows]):.1f} %, '
          f'input {np.mean([r["input_hz"] for r in rows]):.2f} Hz, '
          f'drops/min {np.mean([r["dropped_per_min"] for r in rows]):.0f}')
    print(f'# csv {Path(args.out) / "soak.csv"}' + (f', png {png}' if png else ''))
    for line in summary_lines(rows):
        print(line)
    print(f'| {"goal":<58} | {"measured":<44} | ok |')
    print(f'|{"-" * 60}|{"-" * 46}|----|')
    ok_all = True
    for goal, measured, ok in goals(result, args.minutes, args.hang):
        ok_all &= ok is None or bool(ok)                    # None: a figure, not a goal
        print(f'| {goal:<58} | {measured:<44} | {"info" if ok is None else "yes" if ok else "NO"} |')
    if not ok_all:
        print('node log tail:\n' + str(result['log'])[-1500:])
    return 0 if ok_all else 1


if __name__ == '__main__':
    sys.exit(main())
