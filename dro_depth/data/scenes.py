"""Procedural box-world scenes for the synthetic renderer: textured indoor rooms and outdoor streets.

World frame (REP 103, like ``odom``): x forward along the room / street, y left, z up, metres.
Every object is a solid axis-aligned box with one texture per face orientation (x, y or z facing),
a per-box colour tint and texture offset. Rooms are closed by six slab boxes (floor, ceiling, four
walls); streets lie on a large ground slab and are open to the sky (rays that hit nothing are sky).

Each scene carries a collision-free camera path (:class:`Path2D`) with a guaranteed horizontal
clearance ``path_clearance`` to every box that reaches the camera height range, which the trajectory
generator (:mod:`dro_depth.data.trajectories`) follows.
"""
from __future__ import annotations

import logging
from typing import Any, Dict
from dataclasses import dataclass, field

import numpy as np

from .textures import TEXTURE_SIZE, TextureAtlas, make_texture

logger = logging.getLogger(__name__)

SCENE_KINDS = ('indoor', 'outdoor')


@dataclass
class Path2D:
    """Dense horizontal polyline with arc-length parametrisation.

    Attributes:
        points: ``(M, 2)`` xy vertices (world frame), densely sampled (a few cm apart).
        closed: whether the path loops (arc length wraps modulo :attr:`length`).
    """
    points: np.ndarray
    closed: bool = False
    _s: np.ndarray = field(init=False, repr=False)
    _heading: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2:
            raise ValueError(f'Path2D needs (M>=2, 2) points, got {pts.shape}')
        if self.closed:
            pts = np.concatenate([pts, pts[:1]])
        self.points = pts
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        self._s = np.concatenate([[0.0], np.cumsum(seg)])
        if self.closed:
            d = np.roll(pts[:-1], -1, 0) - np.roll(pts[:-1], 1, 0)
        else:
            d = np.gradient(pts, axis=0)
        if self.closed:
            d = np.concatenate([d, d[:1]])
        self._heading = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))

    @property
    def length(self) -> float:
        return float(self._s[-1])

    def _wrap(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, np.float64)
        return np.mod(s, self.length) if self.closed else np.clip(s, 0.0, self.length)

    def position(self, s: np.ndarray) -> np.ndarray:
        """``(P,)`` arc lengths -> ``(P, 2)`` xy positions."""
        s = self._wrap(s)
        return np.stack([np.interp(s, self._s, self.points[:, 0]),
                         np.interp(s, self._s, self.points[:, 1])], -1)

    def heading(self, s: np.ndarray) -> np.ndarray:
        """``(P,)`` arc lengths -> ``(P,)`` tangent yaw in radians (continuous along the path, unwrapped
        within one lap)."""
        return np.interp(self._wrap(s), self._s, self._heading)


@dataclass
class Scene:
    """A renderable box world.

    Attributes:
        kind: 'indoor' or 'outdoor'.
        seed: generator seed.
        box_lo, box_hi: ``(N, 3)`` float64 box corners (world, metres).
        box_material: ``(N, 3)`` int texture index for the faces normal to x, y and z.
        box_tint: ``(N, 3)`` float32 colour multiplier.
        box_uv_offset: ``(N, 2)`` float32 texture offset in tiles.
        box_label: ``N`` labels ('floor', 'wall', 'car', ...).
        atlas: texture atlas; ``tile_m[m]`` is the size in metres of one period of texture ``m``.
        light_dir: ``(3,)`` unit vector pointing towards the directional light (world).
        ambient, diffuse: shading = ambient + diffuse * max(0, n . light_dir), times light_colour.
        light_colour: ``(3,)`` RGB light tint.
        exposure, tone_gamma: image = clip((albedo * shading * exposure) ** tone_gamma).
        sky: whether rays may escape (outdoor); escaped rays get the sky colour and depth NaN.
        sky_zenith, sky_horizon: ``(3,)`` RGB sky gradient; ``cloud_material`` texture for clouds (-1: none).
        path: collision-free camera path; ``path_clearance`` its horizontal clearance in metres.
        camera_height: (min, max) camera height above the floor / ground in metres.
    """
    kind: str
    seed: int
    box_lo: np.ndarray
    box_hi: np.ndarray
    box_material: np.ndarray
    box_tint: np.ndarray
    box_uv_offset: np.ndarray
    box_label: list[str]
    atlas: TextureAtlas
    tile_m: np.ndarray
    light_dir: np.ndarray
    ambient: float
    diffuse: float
    light_colour: np.ndarray
    exposure: float
    tone_gamma: float
    sky: bool
    sky_zenith: np.ndarray
    sky_horizon: np.ndarray
    cloud_material: int
    path: Path2D
    path_clearance: float
    camera_height: tuple[float, float]

    @property
    def n_boxes(self) -> int:
        return len(self.box_lo)

    def distance_to_geometry(self, points: np.ndarray) -> np.ndarray:
        """Euclidean distance from each point to the nearest box (0 inside a box).

        Args:
            points: ``(P, 3)`` world points.

        Returns:
            ``(P,)`` float64 distances in metres.
        """
        p = np.asarray(points, np.float64).reshape(-1, 1, 3)
        d = np.maximum(np.maximum(self.box_lo[None] - p, p - self.box_hi[None]), 0.0)
        return np.linalg.norm(d, axis=-1).min(axis=1)


class _Builder:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.mat: list[tuple[int, int, int]] = []
        self.tint: list[np.ndarray] = []
        self.uv: list[np.ndarray] = []
        self.label: list[str] = []
        self.tex_specs: list[tuple[str, float, tuple[float, float, float] | None]] = []

    def material(self, kind: str, tile_m: float, palette=None) -> int:
        self.tex_specs.append((kind, float(tile_m), None if palette is None else tuple(palette)))
        return len(self.tex_specs) - 1

    def box(self, lo, hi, mat, label: str, tint_jitter: float = 0.0,
            rng: np.random.Generator | None = None) -> None:
        """Add a box; its tint and texture offset come from ``rng`` (default: the builder's)."""
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        r = rng if rng is not None else self.rng
        tint = 1.0 + tint_jitter * r.uniform(-1, 1, 3)
        uv = r.random(2)
        if np.any(hi <= lo):
            return
        mats = (mat, mat, mat) if isinstance(mat, (int, np.integer)) else tuple(mat)
        self.lo.append(lo)
        self.hi.append(hi)
        self.mat.append(mats)
        self.tint.append(tint)
        self.uv.append(uv)
        self.label.append(label)

    def build(self, kind: str, seed: int, **kw) -> Scene:
        tex_rng = np.random.default_rng([seed, 7919])
        textures = [make_texture(k, tex_rng, TEXTURE_SIZE, p) for k, _, p in self.tex_specs]
        atlas = TextureAtlas.from_textures(textures, [k for k, _, _ in self.tex_specs])
        n = len(self.lo)
        return Scene(kind=kind, seed=seed, box_lo=np.stack(self.lo), box_hi=np.stack(self.hi),
                     box_material=np.asarray(self.mat, np.int64),
                     box_tint=np.asarray(self.tint, np.float32),
                     box_uv_offset=np.asarray(self.uv, np.float32).reshape(n, 2),
                     box_label=list(self.label), atlas=atlas,
                     tile_m=np.asarray([t for _, t, _ in self.tex_specs], np.float32), **kw)


def _rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float, step: float = 0.02) -> np.ndarray:
    """Counter-clockwise rounded rectangle polyline starting mid bottom edge, heading +x."""
    r = min(r, 0.5 * (x1 - x0), 0.5 * (y1 - y0))
    pts = []
    corners = [((x1 - r, y0 + r), -np.pi / 2), ((x1 - r, y1 - r), 0.0), ((x0 + r, y1 - r), np.pi / 2),
               ((x0 + r, y0 + r), np.pi)]
    start = np.array([(x0 + x1) / 2, y0])
    pts.append(start)
    for (cx, cy), a0 in corners:
        # straight segment towards the arc start, then the quarter arc
        arc_start = np.array([cx + r * np.cos(a0), cy + r * np.sin(a0)])
        p0 = pts[-1]
        seg = arc_start - p0
        n = max(int(np.linalg.norm(seg) / step), 1)
        pts.extend([p0 + seg * (i / n) for i in range(1, n + 1)])
        na = max(int(r * np.pi / 2 / step), 2)
        a = a0 + np.linspace(0, np.pi / 2, na + 1)[1:]
        pts.extend(np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], -1))
    p0 = pts[-1]
    seg = start - p0
    n = max(int(np.linalg.norm(seg) / step), 1)
    pts.extend([p0 + seg * (i / n) for i in range(1, n)])
    return np.asarray(pts)


def _lighting(rng: np.random.Generator, outdoor: bool) -> dict:
    if outdoor:
        el, az = np.radians(rng.uniform(20, 70)), rng.uniform(0, 2 * np.pi)
    else:
        el, az = np.radians(rng.uniform(40, 80)), rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return dict(light_dir=light, ambient=float(rng.uniform(0.3, 0.6)), diffuse=float(rng.uniform(0.45, 0.9)),
                light_colour=(1.0 + 0.12 * rng.uniform(-1, 1, 3)).astype(np.float32),
                exposure=float(rng.uniform(0.85, 1.25)), tone_gamma=float(rng.uniform(0.8, 1.25)))


def path_clearance(scene: Scene, z_margin: float = 0.5) -> float:
    """Smallest horizontal distance between the scene's camera path and any box whose height range
    comes within ``z_margin`` of the camera height range (floors, kerbs and canopies are ignored)."""
    zmin, zmax = scene.camera_height
    keep = (scene.box_hi[:, 2] > zmin - z_margin) & (scene.box_lo[:, 2] < zmax + z_margin)
    if not np.any(keep):
        return float('inf')
    pts = scene.path.points[:, None, :]
    lo, hi = scene.box_lo[keep, None, :2].transpose(1, 0, 2), scene.box_hi[keep, None, :2].transpose(1, 0, 2)
    d = np.maximum(np.maximum(lo - pts, pts - hi), 0.0)
    return float(np.linalg.norm(d, axis=-1).min())


def make_indoor_scene(seed: int) -> Scene:
    """A closed room with textured walls, floor and ceiling, furniture along the walls and a central
    island; the camera path is a rounded-rectangle loop in the free corridor between them."""
    rng = np.random.default_rng([seed, 1])
    b = _Builder(rng)
    band, corridor = 1.0, 1.5
    lx, ly, hz = rng.uniform(7.0, 10.0), rng.uniform(6.0, 8.0), rng.uniform(2.5, 3.2)
    t = 0.2
    m_floor = b.material(str(rng.choice(['wood', 'tiles', 'checker', 'noise'])), rng.uniform(1.0, 2.5))
    m_ceil = b.material(str(rng.choice(['plaster', 'noise'])), rng.uniform(1.5, 3.0))
    m_walls = [b.material(str(rng.choice(['plaster', 'bricks', 'noise', 'stripes', 'checker'])),
                          rng.uniform(1.0, 2.5)) for _ in range(4)]
    m_furn = [b.material(str(k), rng.uniform(0.5, 1.5)) for k in
              rng.choice(['wood', 'fabric', 'noise', 'checker', 'stripes', 'tiles', 'bricks'], 5,
                         replace=False)]
    b.box((-t, -t, -t), (lx + t, ly + t, 0), m_floor, 'floor')
    b.box((-t, -t, hz), (lx + t, ly + t, hz + t), m_ceil, 'ceiling')
    b.box((-t, -t, 0), (0, ly + t, hz), m_walls[0], 'wall')
    b.box((lx, -t, 0), (lx + t, ly + t, hz), m_walls[1], 'wall')
    b.box((-t, -t, 0), (lx + t, 0, hz), m_walls[2], 'wall')
    b.box((-t, ly, 0), (lx + t, ly + t, hz), m_walls[3], 'wall')

    def furniture(x0, y0, x1, y1, max_h):
        """One item inside the footprint [x0,x1]x[y0,y1]."""
        kind = rng.choice(['block', 'table', 'stack', 'shelf'])
        m_top, m_side = (int(v) for v in rng.choice(m_furn, 2))
        if kind == 'block':
            b.box((x0, y0, 0), (x1, y1, rng.uniform(0.4, max_h)), (m_side, m_side, m_top), 'furniture', 0.2)
        elif kind == 'table':
            h, leg = rng.uniform(0.65, 0.8), 0.06
            b.box((x0, y0, h - 0.05), (x1, y1, h), (m_side, m_side, m_top), 'table', 0.2)
            for lx_, ly_ in ((x0, y0), (x1 - leg, y0), (x0, y1 - leg), (x1 - leg, y1 - leg)):
                b.box((lx_, ly_, 0), (lx_ + leg, ly_ + leg, h - 0.05), m_side, 'table', 0.1)
        elif kind == 'stack':
            z, (cx0, cy0, cx1, cy1) = 0.0, (x0, y0, x1, y1)
            for _ in range(int(rng.integers(2, 4))):
                h = rng.uniform(0.25, 0.6)
                b.box((cx0, cy0, z), (cx1, cy1, z + h), int(rng.choice(m_furn)), 'box', 0.3)
                z += h
                w, d = cx1 - cx0, cy1 - cy0
                cx0, cx1 = cx0 + rng.uniform(0, 0.3) * w, cx1 - rng.uniform(0, 0.3) * w
                cy0, cy1 = cy0 + rng.uniform(0, 0.3) * d, cy1 - rng.uniform(0, 0.3) * d
        else:  # shelf: two sides and boards
            h = rng.uniform(1.2, max_h)
            along_x = (x1 - x0) >= (y1 - y0)
            side = 0.04
            if along_x:
                b.box((x0, y0, 0), (x0 + side, y1, h), m_side, 'shelf', 0.1)
                b.box((x1 - side, y0, 0), (x1, y1, h), m_side, 'shelf', 0.1)
            else:
                b.box((x0, y0, 0), (x1, y0 + side, h), m_side, 'shelf', 0.1)
                b.box((x0, y1 - side, 0), (x1, y1, h), m_side, 'shelf', 0.1)
            for z in np.arange(0.0, h, rng.uniform(0.3, 0.45)):
                b.box((x0, y0, z), (x1, y1, z + 0.03), (m_side, m_side, m_top), 'shelf', 0.1)
            for _ in range(int(rng.integers(2, 6))):  # boxes on the boards
                bx = rng.uniform(x0, x1 - 0.15) if along_x else x0
                by = y0 if along_x else rng.uniform(y0, y1 - 0.15)
                bz = float(rng.choice(np.arange(0.03, h - 0.3, 0.35)))
                wx = rng.uniform(0.1, 0.3) if along_x else (x1 - x0) * 0.8
                wy = (y1 - y0) * 0.8 if along_x else rng.uniform(0.1, 0.3)
                b.box((bx, by, bz), (min(bx + wx, x1), min(by + wy, y1), bz + rng.uniform(0.1, 0.25)),
                      int(rng.choice(m_furn)), 'box', 0.4)

    max_h = hz - 0.3
    for wall in range(4):
        length = lx if wall < 2 else ly
        pos = rng.uniform(0.0, 0.5)
        while pos < length - 0.4:
            w = rng.uniform(0.4, 1.6)
            if rng.random() < 0.78 and pos + w <= length:
                d = rng.uniform(0.3, band)
                if wall == 0:
                    furniture(pos, 0.0, pos + w, d, max_h)
                elif wall == 1:
                    furniture(pos, ly - d, pos + w, ly, max_h)
                elif wall == 2:
                    furniture(0.0, pos, d, pos + w, max_h)
                else:
                    furniture(lx - d, pos, lx, pos + w, max_h)
                pos += w + rng.uniform(0.05, 0.6)
            else:
                pos += rng.uniform(0.3, 1.0)
    ix0, iy0, ix1, iy1 = band + corridor, band + corridor, lx - band - corridor, ly - band - corridor
    if ix1 - ix0 > 0.3 and iy1 - iy0 > 0.3:
        for _ in range(int(rng.integers(1, 4))):
            w, d = rng.uniform(0.3, ix1 - ix0), rng.uniform(0.3, iy1 - iy0)
            x0, y0 = rng.uniform(ix0, ix1 - w), rng.uniform(iy0, iy1 - d)
            furniture(x0, y0, x0 + w, y0 + d, max_h)
    c = band + corridor / 2
    path = Path2D(_rounded_rect(c, c, lx - c, ly - c, r=0.8), closed=True)
    scene = b.build('indoor', seed, sky=False, sky_zenith=np.zeros(3, np.float32),
                    sky_horizon=np.zeros(3, np.float32), cloud_material=-1, path=path,
                    path_clearance=0.0, camera_height=(1.0, min(1.6, hz - 0.8)),
                    **_lighting(rng, outdoor=False))
    scene.path_clearance = path_clearance(scene)
    return scene


def _street_side(b: '_Builder', seed: int, side: int, sgn: int, half: float, walk: float, x_start: float,
                 x_end: float, m: Dict[str, Any]) -> None:
    """One side of the street (``sgn`` -1 right, +1 left): facades, a back row, poles and trees, parked
    cars. Each layer draws from its own stream along +x, so a longer street only appends boxes."""
    m_facades, m_roof, m_metal, m_bark, m_leaves = m['facades'], m['roof'], m['metal'], m['bark'], m['leaves']
    m_car, m_glass, m_tyre = m['car'], m['glass'], m['tyre']
    r = np.random.default_rng([seed, 2, side, 0])
    x = x_start
    while x < x_end:
        w = r.uniform(6.0, 20.0)
        if r.random() < 0.2:  # alley
            x += r.uniform(2.5, 7.0)
            continue
        setback = r.uniform(0.0, 1.5)
        depth, height = r.uniform(8.0, 15.0), r.uniform(5.0, 25.0)
        near = half + walk + setback
        y0, y1 = sorted((sgn * near, sgn * (near + depth)))
        mf = int(r.choice(m_facades))
        b.box((x, y0, 0.0), (x + w, y1, height), (mf, mf, m_roof), 'building', 0.15, r)
        x += w
    r = np.random.default_rng([seed, 2, side, 1])
    x = x_start
    while x < x_end:  # back row, seen through alleys
        w = r.uniform(10.0, 30.0)
        near = half + walk + r.uniform(18.0, 25.0)
        y0, y1 = sorted((sgn * near, sgn * (near + 12.0)))
        mf = int(r.choice(m_facades))
        b.box((x, y0, 0.0), (x + w, y1, r.uniform(10.0, 40.0)), (mf, mf, m_roof), 'building', 0.15, r)
        x += w + r.uniform(0.0, 5.0)
    r = np.random.default_rng([seed, 2, side, 2])
    x = x_start + r.uniform(0, 10)
    while x < x_end:  # poles and trees on the sidewalk
        yk = sgn * (half + 0.4)
        if r.random() < 0.6:
            h = r.uniform(4.0, 7.0)
            b.box((x, yk - 0.08, 0.0), (x + 0.16, yk + 0.08, h), m_metal, 'pole', 0.1, r)
            arm_y = (yk - sgn * 1.2, yk)
            b.box((x, min(arm_y), h - 0.12), (x + 0.16, max(arm_y), h), m_metal, 'pole', 0.1, r)
        else:
            yt = sgn * (half + walk * 0.6)
            b.box((x, yt - 0.15, 0.0), (x + 0.3, yt + 0.15, 2.6), m_bark, 'tree', 0.1, r)
            b.box((x - 1.1, yt - 1.25, 2.6), (x + 1.4, yt + 1.25, r.uniform(4.0, 5.5)), m_leaves, 'tree',
                  0.2, r)
        x += r.uniform(10.0, 25.0)
    r = np.random.default_rng([seed, 2, side, 3])
    x = x_start + r.uniform(0, 5)
    while x < x_end:  # parked cars along the kerb
        length = r.uniform(3.8, 4.8)
        if r.random() < 0.6:
            yc = sgn * (half - 1.2)
            mc = int(r.choice(m_car))
            b.box((x, yc - 0.9, 0.3), (x + length, yc + 0.9, 1.0), mc, 'car', 0.3, r)
            b.box((x + 0.25 * length, yc - 0.8, 1.0), (x + 0.8 * length, yc + 0.8, 1.45),
                  (m_glass, m_glass, mc), 'car', 0.1, r)
            for wx in (x + 0.5, x + length - 1.15):
                for wy in (yc - 0.9, yc + 0.65):
                    b.box((wx, wy, 0.0), (wx + 0.65, wy + 0.25, 0.6), m_tyre, 'car', 0.0, r)
        x += length + r.uniform(1.0, 6.0)


def make_outdoor_scene(seed: int, street_length: float = 250.0) -> Scene:
    """A straight street along +x: asphalt road with lane marks, kerbed sidewalks, facades on both sides
    (with gaps showing a back row), poles with arms, trees, parked cars. Open to the sky.

    Args:
        seed: generator seed.
        street_length: length in metres of the drivable path (the street extends 30 m behind and
            80 m beyond it so the view never runs out of buildings early).
    """
    if street_length <= 0:
        raise ValueError(f'street_length must be > 0, got {street_length}')
    rng = np.random.default_rng([seed, 2])
    b = _Builder(rng)
    road = rng.uniform(7.0, 12.0)
    walk = rng.uniform(2.0, 4.0)
    half = road / 2
    x_start, x_end = -30.0, street_length + 80.0
    m_asphalt = b.material('asphalt', rng.uniform(2.0, 4.0))
    m_walk = b.material(str(rng.choice(['tiles', 'checker', 'noise'])), rng.uniform(1.0, 2.0))
    m_mark = b.material('plaster', 1.0, (0.9, 0.9, 0.85))
    m_facades = [b.material(str(k), rng.uniform(4.0, 9.0)) for k in ['facade', 'facade', 'facade', 'bricks']]
    m_roof = b.material('noise', 5.0)
    m_metal = b.material('noise', 1.0, (0.45, 0.45, 0.5))
    m_bark = b.material('wood', 1.0, (0.35, 0.25, 0.15))
    m_leaves = b.material('noise', 2.0, (0.2, 0.45, 0.15))
    m_car = [b.material('noise', 2.0) for _ in range(3)]
    m_glass = b.material('plaster', 1.0, (0.1, 0.12, 0.16))
    m_tyre = b.material('noise', 0.5, (0.06, 0.06, 0.06))
    m_clouds = b.material('clouds', 1.0)

    b.box((-1000.0, -1000.0, -0.5), (1000.0, 1000.0, 0.0), m_asphalt, 'ground')
    for sgn in (-1, 1):
        y0, y1 = sorted((sgn * half, sgn * (half + walk)))
        b.box((x_start, y0, 0.0), (x_end, y1, 0.12), m_walk, 'sidewalk')
    x = x_start
    while x < x_end:  # dashed centre line
        b.box((x, -0.07, 0.0), (x + 3.0, 0.07, 0.004), m_mark, 'marking')
        x += 9.0
    mats = {'facades': m_facades, 'roof': m_roof, 'metal': m_metal, 'bark': m_bark, 'leaves': m_leaves,
            'car': m_car, 'glass': m_glass, 'tyre': m_tyre}
    for side, sgn in enumerate((-1, 1)):
        _street_side(b, seed, side, sgn, half, walk, x_start, x_end, mats)

    # gentle weaving within the free lane: obstacles are at |y| >= half - 2.1
    amp = float(rng.uniform(0.0, max(0.0, half - 3.1)))
    lam, phase = rng.uniform(30.0, 80.0), rng.uniform(0, 2 * np.pi)
    xs = np.arange(0.0, street_length + 1e-9, 0.05)
    path = Path2D(np.stack([xs, amp * np.sin(2 * np.pi * xs / lam + phase)], -1), closed=False)
    zenith = np.array([0.25, 0.45, 0.85]) * rng.uniform(0.85, 1.15, 3)
    horizon = np.array([0.75, 0.82, 0.92]) * rng.uniform(0.9, 1.1, 3)
    scene = b.build('outdoor', seed, sky=True, sky_zenith=np.clip(zenith, 0, 1).astype(np.float32),
                    sky_horizon=np.clip(horizon, 0, 1).astype(np.float32), cloud_material=m_clouds, path=path,
                    path_clearance=0.0, camera_height=(1.2, 1.8), **_lighting(rng, outdoor=True))
    scene.path_clearance = path_clearance(scene)
    return scene


def make_scene(kind: str = 'indoor', seed: int = 0, **kwargs) -> Scene:
    """Build a scene deterministically from ``seed``.

    Args:
        kind: 'indoor' (closed textured room) or 'outdoor' (street open to the sky).
        seed: random seed; the same (kind, seed, kwargs) always gives the same scene.
        kwargs: forwarded to the builder (outdoor: ``street_length``).
    """
    if kind == 'indoor':
        if kwargs:
            raise TypeError(f'make_indoor_scene takes no extra arguments, got {sorted(kwargs)}')
        return make_indoor_scene(seed)
    if kind == 'outdoor':
        return make_outdoor_scene(seed, **kwargs)
    raise ValueError(f'unknown scene kind {kind!r}; expected one of {SCENE_KINDS}')
