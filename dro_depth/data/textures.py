"""Procedural, tileable albedo textures and a mip-mapped texture atlas for the synthetic renderer.

Every texture is a square ``S x S x 3`` float32 image of linear albedo in [0, 1] that tiles
seamlessly (all noise lattices wrap with period ``S``), so the renderer can repeat it over a face
with ``uv mod 1``. Textures are rich in mid and high frequencies (multi-octave value noise, bricks,
tiles, stripes, windows) so that photometric matching between views is well conditioned.

:class:`TextureAtlas` packs all textures and their box-filtered mip levels into one canvas and
samples it trilinearly with ``cv2.remap`` (bilinear inside a level, linear between levels), which
removes the aliasing of far or grazing surfaces that would otherwise break brightness constancy between views.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

logger = logging.getLogger(__name__)

TEXTURE_SIZE = 256
TEXTURE_KINDS = ('noise', 'bricks', 'checker', 'stripes', 'tiles', 'facade', 'asphalt', 'wood',
                 'clouds', 'plaster', 'fabric')


def value_noise(size: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Tileable smooth value noise.

    Args:
        size: output side length in pixels.
        cells: lattice cells per side (the noise period is ``size``); must divide ``size``.
        rng: random generator.

    Returns:
        ``(size, size)`` float32 in [0, 1].
    """
    if size % cells:
        raise ValueError(f'cells ({cells}) must divide size ({size})')
    lattice = rng.random((cells, cells)).astype(np.float32)
    coords = (np.arange(size, dtype=np.float32) + 0.5) * (cells / size)
    i0 = np.floor(coords).astype(np.int64)
    f = coords - i0
    f = f * f * f * (f * (f * 6 - 15) + 10)  # quintic fade: C2 continuous
    i0 %= cells
    i1 = (i0 + 1) % cells
    a = lattice[i0][:, i0] * (1 - f)[None, :] + lattice[i0][:, i1] * f[None, :]
    b = lattice[i1][:, i0] * (1 - f)[None, :] + lattice[i1][:, i1] * f[None, :]
    return (a * (1 - f)[:, None] + b * f[:, None]).astype(np.float32)


def fbm(size: int, rng: np.random.Generator, base_cells: int = 4, octaves: int = 6,
        persistence: float = 0.55) -> np.ndarray:
    """Tileable fractal (multi-octave) value noise, normalised to zero mean and unit max-abs.

    Returns:
        ``(size, size)`` float32 in [-1, 1].
    """
    out = np.zeros((size, size), np.float32)
    amp, cells = 1.0, base_cells
    for _ in range(octaves):
        if cells > size:
            break
        out += amp * (value_noise(size, cells, rng) - 0.5)
        amp *= persistence
        cells *= 2
    out -= out.mean()
    return out / max(float(np.abs(out).max()), 1e-6)


def _colour(rng: np.random.Generator, base: tuple[float, float, float], jitter: float) -> np.ndarray:
    c = np.asarray(base, np.float32) * (1.0 + jitter * rng.uniform(-1, 1, 3).astype(np.float32))
    return np.clip(c, 0.02, 1.0)


def _grid_ids(size: int, rows: int, cols: int, row_shift: float = 0.0):
    """Cell indices and in-cell coordinates of a (possibly running-bond) grid; all tileable."""
    y = (np.arange(size, dtype=np.float32) + 0.5) / size * rows
    x = (np.arange(size, dtype=np.float32) + 0.5) / size * cols
    yy, xx = np.meshgrid(y, x, indexing='ij')
    r = np.floor(yy).astype(np.int64)
    xx = xx + row_shift * (r % 2)
    c = np.floor(xx).astype(np.int64)
    return r % rows, c % cols, yy - np.floor(yy), xx - np.floor(xx)


def make_texture(kind: str, rng: np.random.Generator, size: int = TEXTURE_SIZE,
                 palette: tuple[float, float, float] | None = None) -> np.ndarray:
    """One procedural tileable albedo texture.

    Args:
        kind: one of :data:`TEXTURE_KINDS`.
        rng: random generator (the texture is a deterministic function of its state).
        size: side length in pixels (power of two).
        palette: base RGB albedo; drawn at random when None.

    Returns:
        ``(size, size, 3)`` float32 linear albedo in [0, 1].
    """
    if kind not in TEXTURE_KINDS:
        raise ValueError(f'unknown texture kind {kind!r}; expected one of {TEXTURE_KINDS}')
    if palette is None:  # random colour, pulled a third of the way towards grey
        c = rng.uniform(0.15, 0.85, 3)
        palette = 0.67 * c + 0.33 * c.mean()
    base = np.asarray(palette, np.float32)
    n_fine = fbm(size, rng, base_cells=16, octaves=4)
    n_coarse = fbm(size, rng, base_cells=2, octaves=5)
    if kind == 'noise':
        tex = base[None, None] * (1 + 0.55 * n_coarse[..., None] + 0.35 * n_fine[..., None])
        tex = tex * (1 + 0.25 * fbm(size, rng, 8, 4)[..., None] * rng.uniform(-1, 1, 3)[None, None])
    elif kind == 'plaster':
        tex = base[None, None] * (1 + 0.25 * n_coarse[..., None] + 0.3 * n_fine[..., None])
    elif kind == 'fabric':
        x = np.arange(size, dtype=np.float32) / size
        weave = 0.5 + 0.5 * np.sin(2 * np.pi * 32 * x)[None, :] * np.sin(2 * np.pi * 32 * x)[:, None]
        tex = base[None, None] * (0.75 + 0.3 * weave[..., None] + 0.25 * n_fine[..., None])
    elif kind == 'bricks':
        rows, cols = 16, 4
        r, c, fy, fx = _grid_ids(size, rows, cols, row_shift=0.5)
        brick_col = np.stack([_colour(rng, tuple(base), 0.25) for _ in range(rows * cols)])
        col = brick_col[(r * cols + c) % len(brick_col)]
        mortar = (fy < 0.12) | (fx < 0.03)
        tex = col * (1 + 0.3 * n_fine[..., None])
        tex[mortar] = np.float32(0.75) * (1 + 0.1 * n_fine[mortar][:, None])
    elif kind == 'checker':
        n = int(rng.choice([4, 8, 16]))
        r, c, _, _ = _grid_ids(size, n, n)
        other = _colour(rng, tuple(1.0 - base), 0.2)
        tex = np.where(((r + c) % 2 == 0)[..., None], base[None, None], other[None, None])
        tex = tex * (1 + 0.3 * n_fine[..., None] + 0.2 * n_coarse[..., None])
    elif kind == 'stripes':
        n = int(rng.choice([8, 16, 32]))
        x = (np.arange(size, dtype=np.float32) + 0.5) / size
        warp = 0.04 * n_coarse
        s = 0.5 + 0.5 * np.sin(2 * np.pi * n * (x[None, :] + warp))
        other = _colour(rng, tuple(base * 0.5), 0.3)
        tex = base[None, None] * s[..., None] + other[None, None] * (1 - s[..., None])
        tex = tex * (1 + 0.3 * n_fine[..., None])
    elif kind == 'wood':
        y = (np.arange(size, dtype=np.float32) + 0.5) / size
        rings = np.sin(2 * np.pi * (24 * y[:, None] + 3.0 * n_coarse))
        tex = base[None, None] * (0.8 + 0.2 * rings[..., None] + 0.25 * n_fine[..., None])
    elif kind == 'tiles':
        n = int(rng.choice([4, 8]))
        r, c, fy, fx = _grid_ids(size, n, n)
        tile_col = np.stack([_colour(rng, tuple(base), 0.15) for _ in range(n * n)])
        tex = tile_col[r * n + c] * (1 + 0.25 * n_fine[..., None])
        grout = (fy < 0.05) | (fx < 0.05)
        tex[grout] = np.float32(0.3) * (1 + 0.2 * n_fine[grout][:, None])
    elif kind == 'facade':
        rows, cols = 4, 4
        r, c, fy, fx = _grid_ids(size, rows, cols)
        wall = base[None, None] * (1 + 0.3 * n_coarse[..., None] + 0.25 * n_fine[..., None])
        win = (fy > 0.25) & (fy < 0.8) & (fx > 0.2) & (fx < 0.8)
        frame = (fy > 0.2) & (fy < 0.85) & (fx > 0.15) & (fx < 0.85) & ~win
        glass = np.stack([_colour(rng, (0.15, 0.2, 0.28), 0.5) for _ in range(rows * cols)])
        tex = wall
        tex[win] = glass[(r * cols + c)[win]] * (1 + 0.5 * n_coarse[win][:, None])
        tex[frame] = np.float32(0.85) * (1 + 0.1 * n_fine[frame][:, None])
    elif kind == 'asphalt':
        grain = rng.random((size, size)).astype(np.float32) - 0.5
        grain = 0.5 * grain + 0.25 * (np.roll(grain, 1, 0) + np.roll(grain, 1, 1))
        grey = 0.25 * (1 + 0.35 * n_coarse + 0.3 * n_fine + 0.8 * grain)
        tex = grey[..., None] * (base[None, None] / max(float(base.mean()), 1e-3) * 0.3 + 0.7)
    else:  # clouds
        c = np.clip(0.5 + 0.9 * n_coarse + 0.2 * n_fine, 0, 1)
        tex = np.repeat(c[..., None], 3, axis=-1)
    return np.clip(tex, 0.0, 1.0).astype(np.float32)


def mip_levels(tex: np.ndarray) -> list[np.ndarray]:
    """Box-filtered mip pyramid of a tileable square texture, down to 4x4 (inclusive).

    Args:
        tex: ``(S, S, C)`` with ``S`` a power of two.
    """
    levels = [tex]
    while levels[-1].shape[0] > 4:
        t = levels[-1]
        levels.append(0.25 * (t[0::2, 0::2] + t[1::2, 0::2] + t[0::2, 1::2] + t[1::2, 1::2]))
    return levels


@dataclass
class TextureAtlas:
    """All textures of a scene with their mip pyramids on one uint8 canvas, sampled with ``cv2.remap``.

    Texture ``m`` occupies a band of rows; its levels sit side by side, each surrounded by a one-texel
    border copied from the opposite edge, so bilinear filtering wraps correctly at tile edges.

    Attributes:
        size: side length ``S`` of level 0 (same for every texture).
        n_levels: number of mip levels ``L`` (sizes ``S, S/2, ..., 4``).
        canvas: ``(M * (S + 2), Wc, 3)`` uint8 texels (8-bit linear albedo).
        x_off: ``(L,)`` float32 canvas column of each level's first texel; ``y_off``: ``(M,)`` row of
            each texture's first texel.
        kinds: texture kind of each of the ``M`` textures.
    """
    size: int
    n_levels: int
    canvas: np.ndarray
    x_off: np.ndarray
    y_off: np.ndarray
    kinds: list[str] = field(default_factory=list)

    @classmethod
    def from_textures(cls, textures: list[np.ndarray], kinds: list[str]) -> 'TextureAtlas':
        if not textures:
            raise ValueError('TextureAtlas needs at least one texture')
        size = textures[0].shape[0]
        if size < 4 or size & (size - 1) or any(t.shape != (size, size, 3) for t in textures):
            raise ValueError('all textures must be (S, S, 3) with the same power-of-two S')
        n_levels = len(mip_levels(textures[0]))
        widths = [(size >> lvl) + 2 for lvl in range(n_levels)]
        x_off = np.concatenate([[0], np.cumsum(widths)[:-1]]) + 1
        canvas = np.zeros((len(textures) * (size + 2), int(sum(widths)), 3), np.uint8)
        for m, tex in enumerate(textures):
            y0 = m * (size + 2)
            for lvl, img in enumerate(mip_levels(tex.astype(np.float32))):
                q = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
                q = np.pad(q, ((1, 1), (1, 1), (0, 0)), mode='wrap')
                canvas[y0:y0 + q.shape[0], x_off[lvl] - 1:x_off[lvl] - 1 + q.shape[1]] = q
        if canvas.shape[0] >= 32767 or canvas.shape[1] >= 32767:
            raise ValueError(f'too many textures for one atlas ({len(textures)})')
        return cls(size=size, n_levels=n_levels, canvas=canvas, x_off=x_off.astype(np.float32),
                   y_off=(np.arange(len(textures)) * (size + 2) + 1).astype(np.float32), kinds=list(kinds))

    def _level(self, mat: np.ndarray, level: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        n = self._sizes.take(level)
        map_x = u * n
        map_x += self._x0.take(level)
        map_y = v * n
        map_y += self._y0.take(mat)
        return cv2.remap(self.canvas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    @property
    def _sizes(self) -> np.ndarray:
        return (self.size / 2.0 ** np.arange(self.n_levels)).astype(np.float32)

    @property
    def _x0(self) -> np.ndarray:
        return self.x_off - np.float32(0.5)

    @property
    def _y0(self) -> np.ndarray:
        return self.y_off - np.float32(0.5)

    def sample(self, mat: np.ndarray, u: np.ndarray, v: np.ndarray, lod: np.ndarray) -> np.ndarray:
        """Trilinear lookup (bilinear within the two nearest mip levels, linear between them).

        Args:
            mat: ``(H, W)`` or ``(P,)`` int texture index.
            u, v: same shape, texture coordinates in tiles (wrapped; 1.0 = one texture period).
            lod: same shape, level of detail = ``log2`` of the pixel footprint in level-0 texels.

        Returns:
            ``(..., 3)`` float32 albedo in [0, 1] (8-bit precision).
        """
        shape = np.shape(mat)
        if len(shape) == 1:  # remap wants a 2D map no wider than 32767
            p = shape[0]
            cols = 1024
            pad = (-p) % cols
            args = [np.pad(np.asarray(a).ravel(), (0, pad)).reshape(-1, cols) for a in (mat, u, v, lod)]
            return self.sample(*args).reshape(-1, 3)[:p]
        lod = np.clip(np.nan_to_num(np.asarray(lod, np.float32), nan=0.0), 0.0, self.n_levels - 1.0)
        l0 = lod.astype(np.int32)  # floor, lod >= 0
        l1 = np.minimum(l0 + 1, self.n_levels - 1)
        u = np.asarray(u, np.float32)
        u = u - np.floor(u)
        v = np.asarray(v, np.float32)
        v = v - np.floor(v)
        mat = np.asarray(mat, np.int64)
        w1 = (lod - l0).astype(np.float32)
        w0 = np.float32(1.0) - w1
        c = cv2.blendLinear(self._level(mat, l0, u, v), self._level(mat, l1, u, v), w0, w1)
        return c.astype(np.float32) * np.float32(1.0 / 255.0)
