"""Appearance domains of the synthetic scenes: the standard look, and a held-out texture and lighting set.

``'standard'`` is what :func:`~dro_depth.data.scenes.make_scene` builds (every model here is trained on it).
``'heldout'`` keeps a scene's geometry, camera path and per-box tints but re-textures every material with
pattern kinds the standard set never uses (marble veins, dots, hexagons, camouflage blobs, zig-zags, plaid)
in the material's own mean colour, and relights it: a strongly tinted light, darker ambient, harsher
exposure and tone curve, and a dusk sky outdoors. It is a domain shift for single-image depth models (the
teacher and student of :mod:`dro_depth.training.mono` never see it labeled).

The held-out look is applied to a built scene, so the standard renderer and every standard seed render
bit-for-bit as before.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .scenes import Scene, make_scene
from .textures import TEXTURE_SIZE, TextureAtlas, fbm

__all__ = ['STYLES', 'HELDOUT_TEXTURE_KINDS', 'heldout_texture', 'restyle_scene', 'styled_scene']

STYLES = ('standard', 'heldout')
HELDOUT_TEXTURE_KINDS = ('marble', 'dots', 'hexagons', 'camo', 'zigzag', 'plaid')


def heldout_texture(kind: str, rng: np.random.Generator, base: np.ndarray,
                    size: int = TEXTURE_SIZE) -> np.ndarray:
    """One tileable texture of a held-out kind around the RGB albedo ``base``: ``(size, size, 3)`` in [0, 1]."""
    if kind not in HELDOUT_TEXTURE_KINDS:
        raise ValueError(f'unknown held-out texture kind {kind!r}; expected one of {HELDOUT_TEXTURE_KINDS}')
    base = np.asarray(base, np.float32)
    other = np.clip(base[::-1] * rng.uniform(0.4, 1.6, 3).astype(np.float32), 0.03, 1.0)
    x = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(x, x, indexing='ij')
    fine = fbm(size, rng, base_cells=32, octaves=3)
    if kind == 'marble':
        veins = np.abs(np.sin(2 * np.pi * (2 * xx + 3 * yy + 2.5 * fbm(size, rng, 2, 6))))
        w = (veins ** 0.3)[..., None]
        tex = base * w + other * (1 - w)
    elif kind == 'dots':
        n = int(rng.choice([8, 16]))
        fy, fx = (yy * n) % 1 - 0.5, (xx * n) % 1 - 0.5
        w = ((fx ** 2 + fy ** 2) < rng.uniform(0.06, 0.16))[..., None]
        tex = np.where(w, other, base)
    elif kind == 'hexagons':
        n = int(rng.choice([4, 8]))
        u, v = xx * n, yy * n * 2 / np.sqrt(3)
        cell = np.floor(u + 0.5 * (np.floor(v) % 2)) + 7 * np.floor(v)
        rim = np.minimum(np.abs((u + 0.5 * (np.floor(v) % 2)) % 1 - 0.5), np.abs(v % 1 - 0.5)) > 0.42
        shade = (0.7 + 0.3 * np.sin(cell * 1.7))[..., None]
        tex = np.where(rim[..., None], other * 0.6, base * shade)
    elif kind == 'camo':
        blobs = fbm(size, rng, base_cells=4, octaves=4)
        third = np.clip(0.5 * (base + other) * rng.uniform(0.6, 1.4, 3).astype(np.float32), 0.03, 1.0)
        tex = np.where((blobs > 0.15)[..., None], other, np.where((blobs < -0.2)[..., None], third, base))
    elif kind == 'zigzag':
        n = int(rng.choice([8, 16]))
        zig = np.abs((xx * n) % 1 - 0.5) * 2 / n
        w = (((yy + zig) * n) % 1 < 0.5)[..., None]
        tex = np.where(w, base, other)
    else:  # plaid
        n = int(rng.choice([4, 8]))
        a = 0.5 + 0.5 * np.sin(2 * np.pi * n * xx)
        b = 0.5 + 0.5 * np.sin(2 * np.pi * n * yy)
        w = (0.5 * (a + b))[..., None]
        tex = base * w + other * (1 - w)
    tex = tex * (1 + 0.25 * fine[..., None])
    return np.clip(tex, 0.0, 1.0).astype(np.float32)


def _material_colours(atlas: TextureAtlas) -> np.ndarray:
    """``(M, 3)`` mean albedo of each texture's level 0."""
    s = atlas.size
    out = []
    for y0 in atlas.y_off.astype(int):
        x0 = int(atlas.x_off[0])
        out.append(atlas.canvas[y0:y0 + s, x0:x0 + s].reshape(-1, 3).mean(0) / 255.0)
    return np.asarray(out, np.float32)


def restyle_scene(scene: Scene, seed: int | None = None) -> Scene:
    """The held-out look of ``scene`` (a new :class:`Scene`; the input is not changed).

    Args:
        seed: seed of the new textures and lighting (default: the scene's seed).
    """
    rng = np.random.default_rng([scene.seed if seed is None else seed, 48611])
    colours = _material_colours(scene.atlas)
    textures, kinds = [], []
    for m, colour in enumerate(colours):
        if m == scene.cloud_material:                  # the sky keeps its clouds (only its colours change)
            lvl0 = scene.atlas.canvas[int(scene.atlas.y_off[m]):int(scene.atlas.y_off[m]) + scene.atlas.size,
                                      int(scene.atlas.x_off[0]):int(scene.atlas.x_off[0]) + scene.atlas.size]
            textures.append(lvl0.astype(np.float32) / 255.0)
            kinds.append(scene.atlas.kinds[m])
            continue
        kind = str(rng.choice(HELDOUT_TEXTURE_KINDS))
        textures.append(heldout_texture(kind, rng, colour, scene.atlas.size))
        kinds.append(kind)
    hue = rng.choice([np.array([1.35, 1.0, 0.6]), np.array([0.65, 0.9, 1.4]), np.array([1.2, 0.7, 1.2])])
    light_colour = (hue * rng.uniform(0.9, 1.1, 3)).astype(np.float32)
    el, az = np.radians(rng.uniform(10, 35)), rng.uniform(0, 2 * np.pi)
    light_dir = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    sky = {}
    if scene.sky:
        sky = dict(sky_zenith=np.clip(np.array([0.35, 0.2, 0.45]) * rng.uniform(0.8, 1.2, 3), 0, 1)
                   .astype(np.float32),
                   sky_horizon=np.clip(np.array([0.95, 0.55, 0.3]) * rng.uniform(0.85, 1.1, 3), 0, 1)
                   .astype(np.float32))
    return dataclasses.replace(
        scene, atlas=TextureAtlas.from_textures(textures, kinds), light_dir=light_dir, light_colour=light_colour,
        ambient=float(rng.uniform(0.12, 0.28)), diffuse=float(rng.uniform(0.9, 1.3)),
        exposure=float(rng.uniform(0.7, 1.5)), tone_gamma=float(rng.choice([rng.uniform(0.55, 0.75),
                                                                           rng.uniform(1.35, 1.7)])),
        **sky)


def styled_scene(kind: str, seed: int, style: str = 'standard', n_frames: int = 30, fps: float = 15.0) -> Scene:
    """The scene :func:`~dro_depth.data.synthetic.generate_sequence` would build for ``(kind, seed)`` (an
    outdoor street long enough for ``n_frames`` of robot motion), in ``style``."""
    if style not in STYLES:
        raise ValueError(f'unknown style {style!r}; expected one of {STYLES}')
    if kind == 'outdoor':
        from .trajectories import _SPEEDS
        vmax = _SPEEDS[('outdoor', 'robot')][1]
        scene = make_scene('outdoor', seed, street_length=max(250.0, 1.1 * vmax * n_frames / fps + 20.0))
    else:
        scene = make_scene(kind, seed)
    return restyle_scene(scene) if style == 'heldout' else scene


def write_styled_folders(out: str, kinds: list, seeds: list, style: str = 'heldout', frames: int = 8,
                         height: int = 192, width: int = 256, overwrite: bool = False) -> list:
    """Render ``kinds`` x ``seeds`` in ``style`` into folders ``out/<kind>_<seed>`` (layout of
    :mod:`dro_depth.data.folders`, depth included); returns their paths."""
    from pathlib import Path

    from .folders import write_folder
    from .synthetic import generate_sequence

    paths = []
    for seed in seeds:
        for kind in kinds:
            scene = styled_scene(kind, seed, style, n_frames=frames)
            seq = generate_sequence(kind, seed=seed, n_frames=frames, height=height, width=width, scene=scene)
            paths.append(write_folder(seq, Path(out) / f'{kind}_{seed}', overwrite=overwrite))
    return paths


def main(argv: list | None = None) -> int:
    """``python -m dro_depth.data.domains --out DIR --seeds 140-179 [--style heldout]``: image folders of a
    look (e.g. unlabeled images of the held-out domain for ``dro-depth pseudo-label --folder``)."""
    import argparse

    p = argparse.ArgumentParser(prog='python -m dro_depth.data.domains', description=main.__doc__)
    p.add_argument('--out', required=True)
    p.add_argument('--seeds', required=True, help='first-last (inclusive), e.g. 140-179')
    p.add_argument('--kinds', default='indoor,outdoor')
    p.add_argument('--style', choices=STYLES, default='heldout')
    p.add_argument('--frames', type=int, default=8)
    p.add_argument('--height', type=int, default=192)
    p.add_argument('--width', type=int, default=256)
    p.add_argument('--overwrite', action='store_true')
    args = p.parse_args(argv)
    first, _, last = args.seeds.partition('-')
    seeds = list(range(int(first), int(last or first) + 1))
    paths = write_styled_folders(args.out, args.kinds.split(','), seeds, args.style, args.frames, args.height,
                                 args.width, args.overwrite)
    print(f'wrote {len(paths)} {args.style} folders to {args.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
