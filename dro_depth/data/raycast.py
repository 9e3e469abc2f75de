"""Vectorised ray casting of box-world scenes (numpy, CPU): exact depth and shaded textured colour.

One ray per pixel centre: pixel ``(u, v)`` (column, row; integer coordinates are pixel centres, as in
OpenCV) looks along ``K^-1 [u, v, 1]`` in the camera optical frame (x right, y down, z forward). That
ray has unit optical z, so the ray parameter of the first hit *is* the depth along optical Z.

Speed: the slab test of each box only runs over the image rectangle that the box can cover (its
corners projected after clipping the box against the near plane), shrunk to the pixels still farther
than the box's nearest point; boxes are visited front to back, hidden ones are skipped, small ones are
tested together in one batch, and texturing (``cv2.remap`` mip-mapping) runs once per visible pixel.
"""
from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

from .scenes import Scene

logger = logging.getLogger(__name__)

_NEAR = 1e-3
# corner c has coordinates (lo|hi) per axis from bits of c; the 12 edges join corners differing in one bit
_CORNER_BITS = np.array([[(c >> a) & 1 for a in range(3)] for c in range(8)], bool)
_EDGES = np.array([(c, c | (1 << a)) for c in range(8) for a in range(3) if not (c >> a) & 1], np.int64)


def check_camera(K: np.ndarray, T_world_cam: np.ndarray, height: int,
                 width: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``K`` (3x3) and ``T_world_cam`` (4x4) to float64 arrays."""
    K = np.asarray(K, np.float64)
    T = np.asarray(T_world_cam, np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f'K must be a finite 3x3 intrinsic matrix with fx, fy > 0, got {K!r}')
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f'T_world_cam must be a finite 4x4 matrix, got shape {T.shape}')
    if np.abs(T[:3, :3] @ T[:3, :3].T - np.eye(3)).max() > 1e-6 or np.abs(T[3] - (0, 0, 0, 1)).max() > 0:
        raise ValueError('T_world_cam must be a rigid transform (orthonormal rotation, last row 0 0 0 1)')
    if int(height) <= 0 or int(width) <= 0:
        raise ValueError(f'image size must be positive, got {height}x{width}')
    return K, T


@lru_cache(maxsize=16)
def _camera_rays(k: tuple, height: int, width: int) -> np.ndarray:
    K = np.asarray(k, np.float64).reshape(3, 3)
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    pix = np.stack([u, v, np.ones_like(u)], -1)
    rays = pix @ np.linalg.inv(K).T
    rays /= rays[..., 2:3]
    rays = np.ascontiguousarray(rays.reshape(-1, 3).T, dtype=np.float32)
    rays.setflags(write=False)
    return rays  # (3, H * W) optical-frame directions with z = 1


def _screen_rects(lo: np.ndarray, hi: np.ndarray, K: np.ndarray, R_cw: np.ndarray, height: int, width: int):
    """Conservative pixel rectangles ``(N, 4)`` [u0, u1, v0, v1) covered by each box, a visibility flag
    and a lower bound of each box's depth.

    Args:
        lo, hi: ``(N, 3)`` box corners relative to the camera centre (world axes).
        R_cw: ``(3, 3)`` world-to-camera rotation.
    """
    corners = np.where(_CORNER_BITS[None], hi[:, None], lo[:, None])  # (N, 8, 3)
    pc = corners @ R_cw.T  # camera frame
    z = pc[..., 2]
    front = z > _NEAR
    any_front = front.any(1)
    # points used for the bounds: corners in front, plus edge / near-plane intersections
    a, b = pc[:, _EDGES[:, 0]], pc[:, _EDGES[:, 1]]  # (N, 12, 3)
    za, zb = a[..., 2], b[..., 2]
    cross = (za > _NEAR) != (zb > _NEAR)
    with np.errstate(divide='ignore', invalid='ignore'):
        s = (_NEAR - za) / (zb - za)
    inter = a + s[..., None] * (b - a)
    pts = np.concatenate([pc, inter], 1)
    ok = np.concatenate([front, cross], 1)
    zz = np.where(ok, pts[..., 2], 1.0)
    u = K[0, 0] * pts[..., 0] / zz + K[0, 1] * pts[..., 1] / zz + K[0, 2]
    v = K[1, 1] * pts[..., 1] / zz + K[1, 2]
    big = 1e9
    u0 = np.where(ok, u, big).min(1)
    u1 = np.where(ok, u, -big).max(1)
    v0 = np.where(ok, v, big).min(1)
    v1 = np.where(ok, v, -big).max(1)
    rect = np.stack([np.floor(u0) - 1, np.ceil(u1) + 2, np.floor(v0) - 1, np.ceil(v1) + 2], 1)
    rect = np.clip(rect, 0, [width, width, height, height]).astype(np.int64)
    visible = any_front & (rect[:, 1] > rect[:, 0]) & (rect[:, 3] > rect[:, 2])
    # nearest possible depth of each box (a lower bound; the clipped box's minimum z is at a vertex)
    zmin = np.where(ok, pts[..., 2], np.inf).min(1)
    return rect, visible, zmin


def _cast_batched(boxes: np.ndarray, rect: np.ndarray, zmin: np.ndarray, lo32: np.ndarray, hi32: np.ndarray,
                  inv: np.ndarray, depth: np.ndarray, box_id: np.ndarray) -> None:
    """Slab test of many small boxes at once, over the pixels of their rectangles (in place).

    Candidate (pixel, box) pairs whose current depth is already nearer than the box are dropped first.
    """
    u0, u1, v0, v1 = rect[boxes].T
    w = u1 - u0
    sizes = w * (v1 - v0)
    starts = np.cumsum(sizes) - sizes
    which = np.repeat(np.arange(len(boxes)), sizes)
    local = np.arange(int(sizes.sum())) - starts[which]
    ww = w[which]
    row = ((local + 0.5) / ww).astype(np.int64)  # exact floor division for these magnitudes
    pix = (v0[which] + row) * depth.shape[1] + (u0[which] + local - row * ww)
    flat_depth = depth.reshape(-1)
    keep = flat_depth[pix] > zmin[boxes][which]
    pix, which = pix[keep], boxes[which[keep]]
    if pix.size == 0:
        return
    inv_flat = inv.reshape(3, -1)
    tn = None
    tf = None
    for a in range(3):
        ia = inv_flat[a].take(pix)
        t1 = lo32[a].take(which) * ia
        t2 = hi32[a].take(which) * ia
        n_, f_ = np.minimum(t1, t2), np.maximum(t1, t2)
        tn = n_ if tn is None else np.maximum(tn, n_)
        tf = f_ if tf is None else np.minimum(tf, f_)
    hit = (tn <= tf) & (tn > 0) & (tn < flat_depth[pix])
    pix, which, tn = pix[hit], which[hit], tn[hit]
    if pix.size == 0:
        return
    # per pixel, nearest first: positive float32 bit patterns sort like the floats
    order = np.argsort((pix << 32) | tn.view(np.int32).astype(np.int64))
    pix, which, tn = pix[order], which[order], tn[order]
    first = np.concatenate([[True], pix[1:] != pix[:-1]])
    pix, which, tn = pix[first], which[first], tn[first]
    flat_depth[pix] = tn
    box_id.reshape(-1)[pix] = which


def cast_rays(scene: Scene, K: np.ndarray, T_world_cam: np.ndarray, height: int, width: int,
              batch_area: int = 3000):
    """First hit of every pixel ray.

    Boxes covering large rectangles are tested one by one, front to back, skipping boxes hidden
    behind what is already drawn; the remaining small boxes are tested in one batch.

    Returns:
        depth: ``(H, W)`` float32 depth along optical Z (inf where nothing is hit).
        box_id: ``(H, W)`` int64 index of the hit box (-1: none).
        dirs: ``(3, H, W)`` float32 world-frame ray directions with unit optical z (exact zeros
            replaced by 1e-30).
    """
    K, T = check_camera(K, T_world_cam, height, width)
    R_wc, origin = T[:3, :3], T[:3, 3]
    rays = _camera_rays(tuple(K.ravel()), int(height), int(width))
    dirs = (R_wc.astype(np.float32) @ rays).reshape(3, height, width)
    dirs[dirs == 0] = np.float32(1e-30)  # no exact zeros: keeps slab and face tests finite
    inv = np.float32(1.0) / dirs
    lo = scene.box_lo - origin
    hi = scene.box_hi - origin
    rect, visible, zmin = _screen_rects(lo, hi, K, R_wc.T, height, width)
    depth = np.full((height, width), np.inf, np.float32)
    box_id = np.full((height, width), -1, np.int64)
    lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
    order = np.flatnonzero(visible)
    order = order[np.argsort(zmin[order], kind='stable')]  # front to back: occluded boxes get skipped
    area = (rect[order, 1] - rect[order, 0]) * (rect[order, 3] - rect[order, 2])
    for i in order[area > batch_area]:
        u0, u1, v0, v1 = rect[i]
        if zmin[i] > _NEAR:
            # shrink the rectangle to the pixels that are still farther than the box can be
            farther = depth[v0:v1, u0:u1] > zmin[i]
            rows = np.flatnonzero(farther.any(1))
            if rows.size == 0:
                continue  # everything in the box's rectangle is already nearer than the box
            cols = np.flatnonzero(farther[rows[0]:rows[-1] + 1].any(0))
            u0, u1, v0, v1 = u0 + cols[0], u0 + cols[-1] + 1, v0 + rows[0], v0 + rows[-1] + 1
        best = depth[v0:v1, u0:u1]
        ia = inv[:, v0:v1, u0:u1]
        t1 = lo32[i, :, None, None] * ia
        t2 = hi32[i, :, None, None] * ia
        tn = np.minimum(t1, t2).max(0)
        tf = np.maximum(t1, t2).min(0)
        hit = (tn <= tf) & (tn > 0) & (tn < best)
        if hit.any():
            best[hit] = tn[hit]
            box_id[v0:v1, u0:u1][hit] = i
    small = order[area <= batch_area]
    if small.size:
        _cast_batched(small, rect, zmin, lo32.T, hi32.T, inv, depth, box_id)
    return depth, box_id, dirs


def render(scene: Scene, K: np.ndarray, T_world_cam: np.ndarray, height: int, width: int,
           return_ids: bool = False):
    """Render one view.

    Lambertian shading per face normal with the scene's ambient + directional light, trilinear
    mip-mapped textures, then the scene's exposure and tone curve. Sky (outdoor): a vertical gradient
    with clouds, a function of the ray direction only (it is at infinity).

    Args:
        scene: scene from :func:`dro_depth.data.scenes.make_scene`.
        K: ``(3, 3)`` intrinsics (pixel centres at integer coordinates).
        T_world_cam: ``(4, 4)`` pose of the camera optical frame in the world frame.
        height, width: image size.
        return_ids: also return the ``(H, W)`` int64 hit box index (-1 = sky).

    Returns:
        rgb: ``(H, W, 3)`` uint8.
        depth: ``(H, W)`` float32 metres along optical Z; NaN where the ray escapes (sky).
        (box_id): when ``return_ids``.
    """
    K, T = check_camera(K, T_world_cam, height, width)
    depth, box_id, d = cast_rays(scene, K, T, height, width)
    sky = box_id < 0
    any_sky = bool(sky.any())
    ids = np.where(sky, 0, box_id) if any_sky else box_id
    t = np.where(sky, np.float32(1.0), depth) if any_sky else depth
    origin = T[:3, 3]
    lo_tab = (scene.box_lo - origin).astype(np.float32).T  # (3, N)
    hi_tab = (scene.box_hi - origin).astype(np.float32).T
    # which face was hit: the last slab the ray entered, i.e. the largest front-plane parameter
    t_near, lo = [], []
    for a in range(3):
        lo_a = lo_tab[a].take(ids)
        pos = d[a] > 0
        t_near.append(np.where(pos, lo_a, hi_tab[a].take(ids)) / d[a])
        lo.append(lo_a)
    t0, t1, t2 = t_near
    ax1 = t1 > t0
    axis = np.where(t2 > np.maximum(t0, t1), np.int8(2), ax1.astype(np.int8))
    is0, is1, is2 = axis == 0, axis == 1, axis == 2
    q0 = d[0] * t - lo[0]  # box-local hit coordinates
    q1 = d[1] * t - lo[1]
    q2 = d[2] * t - lo[2]
    mat = scene.box_material.ravel().take(ids * 3 + axis)
    inv_tile = (1.0 / scene.tile_m).astype(np.float32).take(mat)
    u = np.where(is0, q1, q0)
    u *= inv_tile
    u += scene.box_uv_offset[:, 0].take(ids)
    v = np.where(is2, q1, q2)
    v *= inv_tile
    v += scene.box_uv_offset[:, 1].take(ids)
    d_axis = np.where(is0, d[0], np.where(is1, d[1], d[2]))
    footprint = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    footprint *= t
    footprint *= inv_tile
    footprint /= np.maximum(np.abs(d_axis), np.float32(1e-6))
    footprint *= np.float32(1.0 / K[0, 0])  # (metres per pixel on the surface) / tile size
    if any_sky:
        # clouds: a texture on a plane at infinity, indexed by the ray direction
        norm = np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
        el = d[2] / norm
        up = np.maximum(el, np.float32(0.02))
        mat = np.where(sky, scene.cloud_material if scene.cloud_material >= 0 else 0, mat)
        u = np.where(sky, np.float32(0.15) * d[0] / (norm * up), u)
        v = np.where(sky, np.float32(0.15) * d[1] / (norm * up), v)
        footprint = np.where(sky, np.float32(0.15) / (np.float32(K[0, 0]) * up * up), footprint)
    lod = np.log2(np.maximum(footprint * np.float32(scene.atlas.size), np.float32(1e-9)))
    colour = scene.atlas.sample(mat, u, v, lod)  # (H, W, 3) albedo
    # the hit face looks at the camera: its outward normal is -sign(d) along the axis
    ndotl = np.where(d_axis > 0, -1.0, 1.0).astype(np.float32) * scene.light_dir.astype(np.float32).take(axis)
    shade = np.float32(scene.ambient) + np.float32(scene.diffuse) * np.maximum(ndotl, np.float32(0.0))
    tint = scene.box_tint.take(ids, axis=0)
    tint *= shade[..., None]
    tint *= scene.light_colour * np.float32(scene.exposure)
    colour *= tint
    if any_sky:
        w = np.sqrt(np.clip(el[sky], 0.0, 1.0))[:, None]
        grad = scene.sky_horizon * (1 - w) + scene.sky_zenith * w
        if scene.cloud_material >= 0:
            cl = colour[sky][:, :1] / np.maximum(tint[sky][:, :1], np.float32(1e-6))
            cw = np.clip((cl - 0.45) * 2.5, 0, 1) * np.clip(w * w * 6, 0, 1)
            grad = grad * (1 - cw) + np.float32(0.95) * cw
        colour[sky] = grad * np.float32(scene.exposure) if scene.sky else np.float32(0)
    np.clip(colour, 0.0, 1.0, out=colour)
    if scene.tone_gamma != 1.0:
        np.power(colour, np.float32(scene.tone_gamma), out=colour)
    colour *= np.float32(255.0)
    colour += np.float32(0.5)
    rgb = colour.astype(np.uint8)
    if any_sky:
        depth[sky] = np.nan
    if return_ids:
        return rgb, depth, box_id
    return rgb, depth
