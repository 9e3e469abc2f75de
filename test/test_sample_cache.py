"""The on-disk sample cache renders a scene once and serves the identical sequence afterwards.

Real ray-cast scenes (tiny), real files. The render function is the generator itself, wrapped only to count
its jobs: a cache that re-rendered, served another scene or another size, or kept a broken file would fail.
"""
from __future__ import annotations

import numpy as np

from dro_depth.data.sample_cache import cache_dir, cache_key, cached_sequences
from dro_depth.data.synthetic import generate_sequence
from dro_depth.training.gpu_recipe import render_parallel
from dro_depth.training.loop import DataConfig, load_sequences

SIZE = dict(frames=3, height=24, width=32)


class CountingRenderer:
    def __init__(self):
        self.jobs = []

    def __call__(self, jobs):
        self.jobs += jobs
        return [generate_sequence(kind, seed=seed, n_frames=n, height=h, width=w) for kind, seed, n, h, w in jobs]


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.depths, b.depths)                 # NaN (sky) compares equal here
    np.testing.assert_array_equal(a.poses, b.poses)
    np.testing.assert_array_equal(a.K, b.K)
    np.testing.assert_array_equal(a.stamps, b.stamps)
    assert a.metadata['seed'] == b.metadata['seed'] and a.metadata['static'] == b.metadata['static']


def test_second_call_reads_what_the_first_rendered(tmp_path):
    render = CountingRenderer()
    first = cached_sequences(tmp_path, ['indoor', 'outdoor'], [7, 8], render=render, **SIZE)
    assert [(k, s) for k, s, *_ in render.jobs] == [('indoor', 7), ('outdoor', 7), ('indoor', 8), ('outdoor', 8)]
    again = CountingRenderer()
    second = cached_sequences(tmp_path, ['indoor', 'outdoor'], [7, 8], render=again, **SIZE)
    assert again.jobs == []
    for a, b in zip(first, second):
        _same(a, b)
    assert np.isnan(second[1].depths).any()                           # the outdoor sky survived the round trip
    # A config sharing scenes renders only the new one; order follows seeds, then kinds.
    more = CountingRenderer()
    seqs = cached_sequences(tmp_path, ['outdoor'], [8, 9, 10, 11], render=more, chunk=2, **SIZE)
    assert [(k, s) for k, s, *_ in more.jobs] == [('outdoor', 9), ('outdoor', 10), ('outdoor', 11)]
    assert [s.metadata['seed'] for s in seqs] == [8, 9, 10, 11]


def test_key_follows_the_render_parameters(tmp_path):
    keys = {cache_key(3, 24, 32), cache_key(4, 24, 32), cache_key(3, 48, 64)}
    assert len(keys) == 3 and cache_key(3, 24, 32) == cache_key(3, 24, 32)
    cached_sequences(tmp_path, ['indoor'], [7], render=CountingRenderer(), **SIZE)
    render = CountingRenderer()
    seq, = cached_sequences(tmp_path, ['indoor'], [7], frames=4, height=24, width=32, render=render)
    assert len(render.jobs) == 1 and len(seq) == 4                    # another length is another folder


def test_unreadable_file_is_rendered_again(tmp_path):
    ref, = cached_sequences(tmp_path, ['indoor'], [7], render=CountingRenderer(), **SIZE)
    path = cache_dir(tmp_path, **SIZE) / 'indoor-000007.npz'
    path.write_bytes(path.read_bytes()[:1000])                        # a truncated file (killed writer, full disk)
    render = CountingRenderer()
    seq, = cached_sequences(tmp_path, ['indoor'], [7], render=render, **SIZE)
    assert len(render.jobs) == 1
    _same(ref, seq)
    _same(ref, cached_sequences(tmp_path, ['indoor'], [7], render=CountingRenderer(), **SIZE)[0])


def test_training_loader_and_gpu_recipe_use_the_cache(tmp_path):
    data = DataConfig(source='synthetic', kinds=['indoor'], seeds=[7, 8], frames_per_sequence=3,
                      render_height=24, render_width=32, cache_dir=str(tmp_path))
    from_loader = load_sequences(data, need_ground_truth=True)
    files = sorted(p.name for p in cache_dir(tmp_path, **SIZE).glob('*.npz'))
    assert files == ['indoor-000007.npz', 'indoor-000008.npz']
    for a, b in zip(from_loader, render_parallel(data, workers=1, cache=str(tmp_path))):
        _same(a, b)
    _same(from_loader[0], generate_sequence('indoor', seed=7, n_frames=3, height=24, width=32))


def test_an_interrupted_render_keeps_the_finished_chunks(tmp_path):
    class DiesOnSecondChunk(CountingRenderer):
        def __call__(self, jobs):
            if self.jobs:
                raise KeyboardInterrupt
            return super().__call__(jobs)

    render = DiesOnSecondChunk()
    try:
        cached_sequences(tmp_path, ['indoor'], [7, 8, 9], render=render, chunk=2, **SIZE)
    except KeyboardInterrupt:
        pass
    files = sorted(p.name for p in cache_dir(tmp_path, **SIZE).glob('*.npz'))
    assert files == ['indoor-000007.npz', 'indoor-000008.npz']
    again = CountingRenderer()
    cached_sequences(tmp_path, ['indoor'], [7, 8, 9], render=again, chunk=2, **SIZE)
    assert [s for _, s, *_ in again.jobs] == [9]
