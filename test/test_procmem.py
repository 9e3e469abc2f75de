"""Reading a process's memory from /proc (``dro_depth.bench.procmem``) and malloc's own books
(``dro_depth.ros.memory.heap_usage``): the soak benchmark attributes an RSS step with them, so each must
see a growth of the kind it names and nothing else."""
import mmap
import os
from pathlib import Path

import numpy as np
import pytest

from dro_depth.bench.procmem import mappings, node_rss_mb, process_memory

pytestmark = pytest.mark.skipif(not Path('/proc/self/smaps').exists(), reason='needs Linux /proc')

MB = 2 ** 20


def test_parts_add_up_to_the_total_and_a_gone_process_is_nan():
    m = process_memory(os.getpid())
    assert m['rss_mb'] > 0
    assert m['rss_anon_mb'] + m['rss_file_mb'] + m['rss_shmem_mb'] == pytest.approx(m['rss_mb'], abs=0.01)
    assert node_rss_mb(os.getpid()) > 0
    gone = 2 ** 22 + 17                                      # above pid_max: never a live process
    assert all(np.isnan(v) for v in process_memory(gone).values()) and mappings(gone) == []


def test_touched_anonymous_memory_is_anon_and_named_by_its_mapping():
    before = process_memory(os.getpid())
    buf = mmap.mmap(-1, 64 * MB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buf.write(b'\1' * (64 * MB))                            # touched: now resident
    after = process_memory(os.getpid())
    assert after['rss_anon_mb'] - before['rss_anon_mb'] >= 60
    assert abs(after['rss_file_mb'] - before['rss_file_mb']) < 8
    big = [m for m in mappings(os.getpid(), 60 * 1024) if m.key.startswith('anon@')]
    assert any(m.size_kb >= 64 * 1024 and m.rss_kb >= 60 * 1024 for m in big), big
    buf.close()
    assert process_memory(os.getpid())['rss_anon_mb'] < after['rss_anon_mb'] - 50    # unmapped: gone


def test_shared_memory_counts_as_shmem_not_anon():
    before = process_memory(os.getpid())
    with mmap.mmap(-1, 32 * MB, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS) as seg:   # as DDS segments
        seg.write(b'\1' * (32 * MB))
        after = process_memory(os.getpid())
    assert after['rss_shmem_mb'] - before['rss_shmem_mb'] >= 30


def test_a_mapped_file_counts_as_file_under_its_path(tmp_path):
    path = tmp_path / 'weights.bin'
    path.write_bytes(os.urandom(16 * MB))
    with open(path, 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
        checksum = sum(view[i] for i in range(0, 16 * MB, 4096))        # touch every page
        rows = {m.key: m for m in mappings(os.getpid())}
    assert checksum >= 0
    assert str(path) in rows and rows[str(path)].rss_kb >= 15 * 1024, sorted(rows)[:5]


def test_heap_usage_sees_malloc_in_use_and_mmapped_blocks():
    from dro_depth.ros.memory import MallocTuning, glibc, heap_usage

    if glibc() is None or not hasattr(glibc(), 'mallinfo2'):
        assert heap_usage() == {}
        return
    MallocTuning(mmap_threshold=1 << 20, trim_period=0).apply()          # 48 MB is then an mmapped block
    before = heap_usage()
    block = np.ones(48 * MB // 8)
    during = heap_usage()
    del block
    after = heap_usage()
    assert during['malloc_in_use_mb'] - before['malloc_in_use_mb'] == pytest.approx(48, abs=2)
    assert during['malloc_mmapped_mb'] - before['malloc_mmapped_mb'] == pytest.approx(48, abs=2)
    assert after['malloc_in_use_mb'] == pytest.approx(before['malloc_in_use_mb'], abs=2)
    assert set(MallocTuning().diagnostics()) >= {'malloc_in_use_mb', 'malloc_free_mb', 'malloc_mmapped_mb'}
