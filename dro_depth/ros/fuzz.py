"""Fuzz benchmark over real DDS: the installed ``sfm_node`` fed valid frames and a seeded storm of malformed
ones (see :mod:`dro_depth.ros.fuzz_cases` for the classes), then its invariants checked.

    python -m dro_depth.ros.fuzz                       # full profile: 640x480, node defaults
    python -m dro_depth.ros.fuzz --profile short       # the CI profile (a few seconds of storm)

Invariants (a table; exit code 1 when one is violated):

* the node is alive and answers valid frames again after the storm (paced, incl. two 1 ns apart);
* no depth for a case it must refuse, no stamp published twice, every ``answer`` case published;
* depth is published in the input's frame (frame_id changes are followed);
* exact accounting from /diagnostics: ``received == processed + dropped(by reason) + pending``, every sent
  image received, every refusal counted exactly under its reason (bad_encoding, too_large, unpaired and
  bad_input: the node checks everything that needs no inference before its mailbox, so no malformed frame
  can be lost as overload instead);
* RSS bounded: growth over the second half of the storm <= ``--rss-growth`` MB.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import sys
import time
from collections import Counter
from typing import Dict, List, Optional, Tuple

__all__ = ['PROFILES', 'run_fuzz', 'main']

# name -> (storm cases after the first of each class, input WIDTHxHEIGHT, large valid frame, node params)
PROFILES: Dict[str, dict] = {
    'short': dict(n=10, size=(160, 120), large=(1280, 960),
                  params={'backend': 'torch', 'metric.enabled': False, 'max_input_pixels': 1280 * 960}),
    'full': dict(n=600, size=(640, 480), large=(3840, 2160), params={}),
}


def _frames(n: int, width: int, height: int):
    from dro_depth.data.synthetic import generate_sequence
    seq = generate_sequence('indoor', seed=3, n_frames=n, height=height, width=width)
    return seq.images, seq.K


def _send(client, case) -> None:
    if case.info is not None and case.info_first:
        client.camera.info_pub.publish(case.info)
    client.camera.image_pub.publish(case.image)


class _Books:
    """What was sent, per stamp and per expected reason."""

    def __init__(self) -> None:
        self.sent = 0
        self.by_stamp: Dict[int, list] = {}
        self.reasons: Counter = Counter()
        self.classes: Counter = Counter()
        self.unanswered: List[str] = []

    def add(self, case) -> None:
        self.sent += 1
        self.by_stamp.setdefault(case.stamp, []).append(case)
        self.classes[case.name] += 1
        if case.expect == 'refuse':
            self.reasons[case.reason] += 1


def _answered(client, stamp: int, timeout: float) -> bool:
    return client.outputs.wait(lambda o: stamp in o.by_stamp('depth'), timeout)


def _storm(client, storm, books: _Books, n: int, pace: float, rng: random.Random,
           answer_timeout: float) -> None:
    for case in storm.cases(n):
        _send(client, case)
        books.add(case)
        if case.expect == 'answer':
            if not _answered(client, case.stamp, answer_timeout):
                books.unanswered.append(f'{case.name} @ {case.stamp}')
        elif case.expect == 'valid' and rng.random() < pace:
            _answered(client, case.stamp, 2.0)            # mostly paced: refusals reach the worker
        else:
            time.sleep(0.003)


def _recover(client, storm, books: _Books, timeout: float) -> Tuple[int, int]:
    """Paced valid frames after the storm, the last two 1 ns apart; (answered, sent)."""
    from .fuzz_cases import CLASSES
    cases = [storm.valid('recovery', expect='answer') for _ in range(3)] + [CLASSES['stamp_1ns'](storm)]
    cases[-1].expect = 'answer'
    ok = 0
    for case in cases:
        _send(client, case)
        books.add(case)
        ok += _answered(client, case.stamp, timeout)
    return ok, len(cases)


def run_fuzz(profile: str = 'short', seed: int = 0, n: Optional[int] = None, timeout: float = 120.0,
             pace: float = 0.8) -> Dict[str, object]:
    """Start the installed node, warm it up, storm it, recover; returns everything the checks need."""
    from dro_depth.bench.procmem import node_rss_mb
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.testing.process import NodeProcess
    from .fuzz_cases import Storm
    from .soak import accounting

    prof = PROFILES[profile]
    n = prof['n'] if n is None else n
    images, K = _frames(12, *prof['size'])
    params = {'diagnostics_period': 0.2, 'image_qos_reliability': 'reliable', 'image_qos_depth': 100,
              **prof['params']}
    proc = NodeProcess(params).start()
    client = SfmClient(topics=['depth', '/diagnostics'], keep=100_000)
    client.camera = _reliable_streamer(client)
    out: Dict[str, object] = {'profile': profile, 'seed': seed, 'n': n}
    try:
        if not client.wait_for_node(timeout):
            raise RuntimeError('sfm_node did not start:\n' + proc.log()[-2000:])
        storm = Storm(images, K, seed=seed, large=prof['large'])
        books = _Books()
        deadline = time.monotonic() + timeout
        while client.outputs.count('depth') == 0 and time.monotonic() < deadline:      # warm-up
            case = storm.valid('warm-up')
            _send(client, case)
            books.add(case)
            _answered(client, case.stamp, 1.0)
        pid = proc.proc.pid
        out['rss_start'] = node_rss_mb(pid)
        t0 = time.monotonic()
        rng = random.Random(seed)
        half = n // 2
        _storm(client, storm, books, half, pace, rng, timeout / 4)      # every class once, then half
        out['rss_mid'] = node_rss_mb(pid)
        _storm_rest(client, storm, books, n - half, pace, rng, timeout / 4)
        out['storm_s'] = time.monotonic() - t0
        out['rss_end'] = node_rss_mb(pid)
        out['recovered'] = _recover(client, storm, books, timeout / 4)
        out['alive'] = proc.alive()
        final = client.wait_diagnostics(
            lambda v: accounting(v)['received'] >= books.sent and int(v.get('queue_depth', 1)) == 0
            and int(v.get('in_inference', 1)) == 0, 15)
        out['books'], out['sent'], out['diag'] = accounting(final), books, final
        out['depth'] = Counter(_stamps(client.outputs.get('depth')))
        out['frames'] = {s: r.msg.header.frame_id for s, r in client.outputs.by_stamp('depth').items()}
    finally:
        client.close()
        out['returncode'] = proc.stop(signal.SIGINT, 60)
        out['log'] = proc.log()
    return out


def _storm_rest(client, storm, books, n, pace, rng, answer_timeout) -> None:
    """The second half: random classes and valid frames only (no forced first-of-each-class pass)."""
    from .fuzz_cases import CLASSES
    names = [k for k in CLASSES if k != 'large_valid']
    for _ in range(n):
        name = names[int(storm.rng.integers(len(names)))] if storm.rng.random() < 0.5 else 'valid'
        case = storm.valid() if name == 'valid' else CLASSES[name](storm)
        if case is None:
            continue
        _send(client, case)
        books.add(case)
        if case.expect == 'answer':
            if not _answered(client, case.stamp, answer_timeout):
                books.unanswered.append(f'{case.name} @ {case.stamp}')
        elif case.expect == 'valid' and rng.random() < pace:
            _answered(client, case.stamp, 2.0)
        else:
            time.sleep(0.003)


def _stamps(received) -> List[int]:
    from .conversions import stamp_to_ns
    return [stamp_to_ns(r.msg.header.stamp) for r in received]


def _reliable_streamer(client):
    from dro_depth.ros.testing.player import CameraStreamer
    return CameraStreamer(client.node, reliability='reliable', depth=100)


def checks(out: Dict[str, object], rss_growth: float) -> List[Tuple[str, str, bool]]:
    """(invariant, measured, ok) rows."""
    books, sent, depth = out['books'], out['sent'], out['depth']
    refused_published = sorted({c.name for s in depth for c in sent.by_stamp.get(s, [])
                                if c.expect == 'refuse'})
    twice = [s for s, k in depth.items() if k > 1]
    unknown = [s for s in depth if s not in sent.by_stamp]
    wrong_frame = sorted({c.name for s, f in out['frames'].items() for c in sent.by_stamp.get(s, [])
                          if c.expect != 'refuse' and c.frame_id and f != c.frame_id})
    ok_rec, n_rec = out['recovered']
    growth = out['rss_end'] - out['rss_mid']
    exp = sent.reasons
    unpaired = books['dropped_unpaired'] + int(float(out['diag'].get('pending_unpaired', 0)))
    rows = [
        ('node alive, clean exit', f'alive {out["alive"]}, exit {out["returncode"]}',
         bool(out['alive']) and out['returncode'] == 0),
        ('answers valid frames after the storm (paced; last two 1 ns apart)', f'{ok_rec} of {n_rec}',
         ok_rec == n_rec),
        ("every 'answer' case published (K bad + P good, frame change, large frame)",
         f'{len(sent.unanswered)} unanswered' + _first(sent.unanswered), not sent.unanswered),
        ('no depth for an input it must refuse', ', '.join(refused_published) or 'none',
         not refused_published),
        ('no stamp published twice; no stamp never sent', f'{len(twice)} twice, {len(unknown)} unknown',
         not twice and not unknown),
        ('depth in the input frame_id', ', '.join(wrong_frame) or 'all match', not wrong_frame),
        ('received == processed + dropped + pending',
         f'{books["received"]} = {books["processed"]} + {books["dropped_total"]} + {books["pending"]}',
         books['balance'] == 0),
        ('every sent image received (reliable QoS)', f'sent {sent.sent}, received {books["received"]}',
         sent.sent == books['received']),
        ('processed == published, internal_error == 0',
         f'{books["processed"]} / {books["published"]}, internal_error {books["dropped_internal_error"]}',
         books['processed'] == books['published'] and books['dropped_internal_error'] == 0),
        ('bad_encoding counted exactly', f'{books["dropped_bad_encoding"]} of {exp["bad_encoding"]}',
         books['dropped_bad_encoding'] == exp['bad_encoding']),
        ('too_large counted exactly', f'{books["dropped_too_large"]} of {exp["too_large"]}',
         books['dropped_too_large'] == exp['too_large']),
        ('unpaired (+ still pending) counted exactly', f'{unpaired} of {exp["unpaired"]}',
         unpaired == exp['unpaired']),
        ('bad_input counted exactly (whatever the overload)',
         f'{books["dropped_bad_input"]} of {exp["bad_input"]} (overload {books["dropped_overload"]})',
         books['dropped_bad_input'] == exp['bad_input']),
        (f'RSS growth over the second half <= {rss_growth:g} MB',
         f'{growth:+.1f} MB (start {out["rss_start"]:.0f}, mid {out["rss_mid"]:.0f}, end '
         f'{out["rss_end"]:.0f} MiB)', growth <= rss_growth),
    ]
    return rows


_PLAIN = ('valid', 'warm-up', 'recovery')


def _first(items: List[str]) -> str:
    return f': {"; ".join(items[:3])}' if items else ''


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m dro_depth.ros.fuzz',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--profile', choices=sorted(PROFILES), default='full')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cases', type=int, default=None, help='storm size after one of each class')
    parser.add_argument('--pace', type=float, default=0.8,
                        help='fraction of valid frames whose answer is awaited (the rest overload the node)')
    parser.add_argument('--rss-growth', type=float, default=20.0, help='MB allowed over the second half')
    parser.add_argument('--timeout', type=float, default=240.0)
    args = parser.parse_args(argv)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(150, 230)))
    from .transport import ensure_fastdds_profile
    ensure_fastdds_profile()
    out = run_fuzz(args.profile, args.seed, args.cases, args.timeout, args.pace)
    sent = out['sent']
    print(f'# fuzz profile {args.profile}, seed {args.seed}: {sent.sent} images sent '
          f'({sum(v for k, v in sent.classes.items() if k not in _PLAIN)} malformed '
          f'or special, {len(sent.classes)} classes) in {out["storm_s"]:.1f} s; machine '
          f'{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}')
    d = out['books']
    print('# drops: ' + ', '.join(f'{k[8:]} {v}' for k, v in d.items() if k.startswith('dropped_') and v))
    ok_all = True
    print(f'| {"invariant":<72} | {"measured":<50} | ok |')
    print(f'|{"-" * 74}|{"-" * 52}|----|')
    for name, measured, ok in checks(out, args.rss_growth):
        ok_all &= bool(ok)
        print(f'| {name:<72} | {measured:<50} | {"yes" if ok else "NO"} |')
    if not ok_all:
        print('node log tail:\n' + str(out['log'])[-2500:])
    return 0 if ok_all else 1


if __name__ == '__main__':
    sys.exit(main())
