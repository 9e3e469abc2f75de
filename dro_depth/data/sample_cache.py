"""On-disk cache of rendered synthetic sequences: a training run (or the GPU recipe's next call) renders a
scene once, later runs read it back instead of ray casting again.

    ROOT/<key>/indoor-000100.npz, outdoor-000100.npz, ...    one sequence per file
    ROOT/<key>/params.json                                   what ``key`` stands for

``key`` is a hash of everything that decides the pixels: sequence length, render size, the cache format and
the source of the renderer modules (scenes, ray caster, textures, trajectories), so an edit of the renderer
starts a fresh folder instead of serving stale frames. Files are keyed by kind and seed inside it, so two
configs that share scenes share files. Each file is written to a temporary name and renamed into place
(a reader never sees half a file); one that cannot be read is rendered again and replaced.

    python -m dro_depth.data.sample_cache --root cache --seeds 100 101 --frames 40 --height 192 --width 256
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Callable, List, Optional, Sequence as Seq, Tuple

import numpy as np

from .sequence import Sequence

__all__ = ['CACHE_FORMAT', 'cache_dir', 'cache_key', 'cached_sequences', 'load_sequence', 'save_sequence']

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
_RENDERER = ('synthetic', 'scenes', 'raycast', 'textures', 'trajectories', 'poses', 'sequence')

Job = Tuple[str, int, int, int, int]          # kind, seed, frames, height, width


def _renderer_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in _RENDERER:
        digest.update((Path(__file__).with_name(f'{name}.py')).read_bytes())
    return digest.hexdigest()


def cache_key(frames: int, height: int, width: int) -> str:
    """16 hex digits naming the cache folder of sequences with these render parameters."""
    params = {'format': CACHE_FORMAT, 'frames': int(frames), 'height': int(height), 'width': int(width),
              'renderer': _renderer_fingerprint()}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir(root: str | Path, frames: int, height: int, width: int) -> Path:
    """``root/<key>`` for these render parameters (created, with its ``params.json``)."""
    path = Path(root) / cache_key(frames, height, width)
    path.mkdir(parents=True, exist_ok=True)
    params = path / 'params.json'
    if not params.is_file():
        params.write_text(json.dumps({'format': CACHE_FORMAT, 'frames': frames, 'height': height,
                                      'width': width, 'renderer': _renderer_fingerprint()}, indent=1))
    return path


def save_sequence(path: Path, seq: Sequence) -> None:
    """Write ``seq`` (depths and poses required) as an uncompressed ``.npz``, atomically."""
    tmp = path.with_name(f'.{path.stem}.{os.getpid()}.tmp.npz')
    np.savez(tmp, images=seq.images, depths=seq.depths, poses=seq.poses, K=seq.K, stamps=seq.stamps,
             frame_id=np.array(seq.frame_id), metadata=np.array(json.dumps(seq.metadata)))
    os.replace(tmp, path)


def load_sequence(path: Path) -> Sequence:
    """The :class:`Sequence` saved by :func:`save_sequence` (metadata tuples come back as lists)."""
    with np.load(path, allow_pickle=False) as z:
        return Sequence(images=z['images'], K=z['K'], stamps=z['stamps'], depths=z['depths'], poses=z['poses'],
                        frame_id=str(z['frame_id']), metadata=json.loads(str(z['metadata'])))


def _render_serial(jobs: List[Job]) -> List[Sequence]:
    from .synthetic import generate_sequence

    return [generate_sequence(kind, seed=seed, n_frames=frames, height=h, width=w)
            for kind, seed, frames, h, w in jobs]


def cached_sequences(root: str | Path, kinds: Seq[str], seeds: Seq[int], frames: int, height: int, width: int,
                     render: Optional[Callable[[List[Job]], List[Sequence]]] = None,
                     chunk: int = 32) -> List[Sequence]:
    """The synthetic sequences ``seeds`` x ``kinds`` (seed-major, like the training loader), read from the
    cache under ``root`` where present, else rendered by ``render`` (a list of jobs -> sequences; default
    one after another in this process) ``chunk`` jobs at a time and written to it."""
    folder = cache_dir(root, frames, height, width)
    jobs = [(kind, int(seed), frames, height, width) for seed in seeds for kind in kinds]
    found: dict = {}
    for job in jobs:
        path = folder / f'{job[0]}-{job[1]:06d}.npz'
        if path.is_file():
            try:
                found[job] = load_sequence(path)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                logger.warning('cache file %s unreadable (%s): rendering it again', path, exc)
    missing = [job for job in jobs if job not in found]
    for start in range(0, len(missing), chunk):         # saved chunk by chunk: an interrupted run keeps them
        part = missing[start:start + chunk]
        for job, seq in zip(part, (render or _render_serial)(part)):
            save_sequence(folder / f'{job[0]}-{job[1]:06d}.npz', seq)
            found[job] = seq
    logger.info('sample cache %s: %d sequences read, %d rendered', folder, len(jobs) - len(missing), len(missing))
    return [found[job] for job in jobs]


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    p = argparse.ArgumentParser(prog='python -m dro_depth.data.sample_cache', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', required=True)
    p.add_argument('--kinds', nargs='+', default=['indoor', 'outdoor'])
    p.add_argument('--seeds', nargs='+', type=int, required=True)
    p.add_argument('--frames', type=int, default=40)
    p.add_argument('--height', type=int, default=192)
    p.add_argument('--width', type=int, default=256)
    a = p.parse_args(argv)
    seqs = cached_sequences(a.root, a.kinds, a.seeds, a.frames, a.height, a.width)
    print(f'{len(seqs)} sequences in {cache_dir(a.root, a.frames, a.height, a.width)}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
