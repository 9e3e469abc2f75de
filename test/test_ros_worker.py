"""The inference worker: latest-only mailbox, bounded memory, every drop counted, clean stop."""
import threading
import time

from dro_depth.ros.worker import InferenceWorker, LatestSlot


def test_slot_keeps_only_the_newest():
    slot = LatestSlot()
    assert slot.put(1) is None
    assert slot.put(2) == 1
    assert slot.put(3) == 2
    assert len(slot) == 1
    assert slot.take(0) == 3
    assert slot.take(0.01) is None
    assert len(slot) == 0


def test_take_wakes_on_put_and_close():
    slot = LatestSlot()
    got = []
    t = threading.Thread(target=lambda: got.append(slot.take(10)))
    t.start()
    slot.put('x')
    t.join(5)
    assert got == ['x']
    t = threading.Thread(target=lambda: got.append(slot.take(10)))
    t.start()
    slot.close()
    t.join(5)
    assert not t.is_alive() and got == ['x', None]


def test_fast_producer_slow_consumer_is_bounded_and_accounted():
    processed, dropped, depths = [], [], []
    gate = threading.Event()

    def process(item):
        gate.wait(5)
        time.sleep(0.002)
        processed.append(item)

    worker = InferenceWorker(process, on_drop=dropped.append)
    worker.start()
    n = 300
    for i in range(n):
        worker.submit(i)
        depths.append(worker.queue_depth())
        if i == 10:
            gate.set()
    deadline = time.monotonic() + 10
    while worker.queue_depth() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert worker.stop(10)
    # every submitted frame was either processed or dropped (counted), none lost, none kept
    assert len(processed) + len(dropped) == n
    assert processed[-1] == n - 1
    assert max(depths) <= 2
    assert len(dropped) > 0
    assert processed == sorted(processed)          # frames are processed in order, never an older one later


def test_newest_frame_is_processed_last():
    processed = []
    worker = InferenceWorker(lambda item: (time.sleep(0.01), processed.append(item)))
    worker.start()
    for i in range(50):
        worker.submit(i)
    deadline = time.monotonic() + 10
    while (not processed or processed[-1] != 49) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert processed[-1] == 49
    assert worker.stop(5)


def test_an_exception_does_not_kill_the_worker():
    processed = []

    def process(item):
        if item == 'bad':
            raise ValueError('broken frame')
        processed.append(item)

    worker = InferenceWorker(process)
    worker.start()
    worker.submit('bad')
    deadline = time.monotonic() + 5
    while worker.errors == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    worker.submit('good')
    while not processed and time.monotonic() < deadline:
        time.sleep(0.005)
    assert processed == ['good'] and worker.errors == 1 and worker.alive
    assert worker.stop(5) and not worker.alive


def test_stop_joins_and_rejects_new_items():
    dropped = []
    worker = InferenceWorker(lambda item: None, on_drop=dropped.append)
    worker.start()
    assert worker.stop(5)
    assert worker.submit('late') is False and dropped == ['late']


def test_after_runs_for_every_item_processed_or_failed_and_cannot_kill_the_worker():
    """The after-hook (a node's malloc trim) sees every item, including one whose processing raised, and
    runs before the worker reports itself idle; a failing hook is logged, the thread goes on."""
    seen, idle_when_after = [], []

    def process(item):
        if item == 'bad':
            raise ValueError('broken frame')

    def after(item):
        idle_when_after.append(worker.queue_depth())
        seen.append(item)
        if item == 'hook-fails':
            raise RuntimeError('after-hook bug')

    worker = InferenceWorker(process, after=after)
    worker.start()
    deadline = time.monotonic() + 5
    for item in ('bad', 'hook-fails', 'good'):
        worker.submit(item)
        while item not in seen and time.monotonic() < deadline:
            time.sleep(0.005)
    assert seen == ['bad', 'hook-fails', 'good'] and worker.errors == 1 and worker.alive
    assert all(depth >= 1 for depth in idle_when_after)      # still busy while the hook runs
    assert worker.stop(5)
