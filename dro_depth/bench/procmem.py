"""A process's resident memory from Linux /proc: the total, its parts, and mapping by mapping.

    process_memory(pid)      # {'rss_mb', 'rss_anon_mb', 'rss_file_mb', 'rss_shmem_mb'}
    mappings(pid)            # [Mapping(key, size_kb, rss_kb), ...] from /proc/<pid>/smaps

The parts say what kind of memory grew: anonymous (malloc arenas and mmapped blocks, libraries' own
allocations, thread stacks), file-backed (code and data of shared libraries, model files mapped in), or
shared memory (DDS shared-memory segments). :func:`mappings` names the mapping: a growth inside one
anonymous mapping at a fixed address (a malloc arena, a thread stack) reads differently from new mappings.
Every figure is NaN (or an empty list) when the process is gone or /proc is not there.
"""
from __future__ import annotations

import math
from typing import Dict, List, NamedTuple

__all__ = ['process_memory', 'node_rss_mb', 'mappings', 'Mapping']

_STATUS_FIELDS = {'VmRSS:': 'rss_mb', 'RssAnon:': 'rss_anon_mb', 'RssFile:': 'rss_file_mb',
                  'RssShmem:': 'rss_shmem_mb'}


def process_memory(pid: int) -> Dict[str, float]:
    """Resident memory of ``pid`` in MiB: total (VmRSS) and its anonymous, file and shared-memory parts."""
    out = {name: math.nan for name in _STATUS_FIELDS.values()}
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                head = line.split(maxsplit=1)[0] if line.strip() else ''
                if head in _STATUS_FIELDS:
                    out[_STATUS_FIELDS[head]] = int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return out


def node_rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (VmRSS; NaN when it is gone)."""
    return process_memory(pid)['rss_mb']


class Mapping(NamedTuple):
    """One mapping (or, for a file, all of that file's mappings): a stable key, size and resident kB."""
    key: str
    size_kb: int
    rss_kb: int


def _key(header: str) -> str:
    """A file's path for file-backed mappings; ``<name or anon>@<start address>`` otherwise."""
    parts = header.split(maxsplit=5)
    path = parts[5].strip() if len(parts) > 5 else ''
    if path.startswith('/') and not path.endswith('(deleted)'):
        return path
    start = parts[0].split('-')[0]
    return f'{path or "anon"}@{start}'


def mappings(pid: int, min_rss_kb: int = 0) -> List[Mapping]:
    """Mappings of ``pid`` with at least ``min_rss_kb`` resident, largest first (file mappings summed)."""
    found: Dict[str, List[int]] = {}
    key = None
    try:
        with open(f'/proc/{pid}/smaps') as f:
            for line in f:
                first = line.split(maxsplit=1)[0] if line.strip() else ''
                if '-' in first and not first.endswith(':'):
                    key = _key(line)
                    found.setdefault(key, [0, 0])
                elif key is not None and first in ('Size:', 'Rss:'):
                    found[key][0 if first == 'Size:' else 1] += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return []
    rows = [Mapping(k, size, rss) for k, (size, rss) in found.items() if rss >= min_rss_kb]
    return sorted(rows, key=lambda m: -m.rss_kb)
