"""numpy <-> ``sensor_msgs/Image`` pixel buffers (rclpy-free; usable by bags, folders and ROS nodes).

Supported encodings: rgb8, bgr8, rgba8, bgra8, mono8, mono16, 8UC1, 8UC3, 16UC1, 32FC1.
Depth follows REP 118: ``32FC1`` in metres (NaN = no measurement) or ``16UC1`` in millimetres
(0 = no measurement), converted by :func:`depth_to_metres`.
"""
from __future__ import annotations

import sys

import numpy as np

from dro_depth.errors import DroDepthError

# encoding -> (dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    'rgb8': (np.dtype(np.uint8), 3), 'bgr8': (np.dtype(np.uint8), 3),
    'rgba8': (np.dtype(np.uint8), 4), 'bgra8': (np.dtype(np.uint8), 4),
    'mono8': (np.dtype(np.uint8), 1), '8UC1': (np.dtype(np.uint8), 1), '8UC3': (np.dtype(np.uint8), 3),
    'mono16': (np.dtype(np.uint16), 1), '16UC1': (np.dtype(np.uint16), 1),
    '32FC1': (np.dtype(np.float32), 1),
}
COLOUR_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', '8UC1', '8UC3')
DEPTH_ENCODINGS = ('32FC1', '16UC1', 'mono16')


class ImageEncodingError(DroDepthError):
    """An image buffer does not match its declared encoding, or the encoding is unsupported."""


def guess_encoding(array: np.ndarray) -> str:
    """Default encoding for an array: HxWx3 uint8 -> rgb8, HxWx4 uint8 -> rgba8, HxW uint8 -> mono8,
    HxW uint16 -> 16UC1, HxW float32/float64 -> 32FC1."""
    a = np.asarray(array)
    if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] in (3, 4):
        return 'rgb8' if a.shape[2] == 3 else 'rgba8'
    if a.ndim == 2:
        if a.dtype == np.uint8:
            return 'mono8'
        if a.dtype == np.uint16:
            return '16UC1'
        if a.dtype in (np.float32, np.float64):
            return '32FC1'
    raise ImageEncodingError(f'cannot infer an image encoding for an array of shape {a.shape} '
                             f'and dtype {a.dtype}')


def array_to_image_fields(array: np.ndarray, encoding: str | None = None) -> dict:
    """Pixel fields of a ``sensor_msgs/Image`` for ``array``.

    Args:
        array: ``(H, W)`` or ``(H, W, C)``; float64 is accepted for 32FC1 and converted.
        encoding: one of :data:`ENCODINGS`; inferred with :func:`guess_encoding` when None.

    Returns:
        dict with height, width, encoding, is_bigendian, step and data (1D uint8, little endian host order).
    """
    a = np.asarray(array)
    encoding = encoding or guess_encoding(a)
    if encoding not in ENCODINGS:
        raise ImageEncodingError(f'unsupported encoding {encoding!r}; supported: {sorted(ENCODINGS)}')
    dtype, ch = ENCODINGS[encoding]
    if encoding == '32FC1' and a.dtype == np.float64:
        a = a.astype(np.float32)
    if a.dtype != dtype:
        raise ImageEncodingError(f'encoding {encoding} needs dtype {dtype}, got {a.dtype}')
    if ch == 1 and a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if (ch == 1 and a.ndim != 2) or (ch > 1 and (a.ndim != 3 or a.shape[2] != ch)):
        raise ImageEncodingError(f'encoding {encoding} needs {ch} channel(s), got array of shape {a.shape}')
    a = np.ascontiguousarray(a)
    h, w = a.shape[:2]
    return dict(height=int(h), width=int(w), encoding=encoding, is_bigendian=int(sys.byteorder == 'big'),
                step=int(w * ch * dtype.itemsize), data=a.reshape(-1).view(np.uint8).copy())


def image_fields_to_array(height: int, width: int, encoding: str, is_bigendian: int, step: int,
                          data: np.ndarray) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` buffer into a native array (a copy).

    Returns:
        ``(H, W)`` for one channel, else ``(H, W, C)``, with the encoding's dtype in host byte order.
    """
    if encoding not in ENCODINGS:
        raise ImageEncodingError(f'unsupported image encoding {encoding!r}; supported: {sorted(ENCODINGS)}')
    dtype, ch = ENCODINGS[encoding]
    row = width * ch * dtype.itemsize
    buf = np.frombuffer(memoryview(np.asarray(data, np.uint8)).cast('B'), np.uint8)
    if step < row or buf.size < step * (height - 1) + row:
        raise ImageEncodingError(f'{encoding} image {width}x{height}: step {step} / {buf.size} data bytes '
                                 f'are too small (a row needs {row} bytes)')
    if height == 0 or width == 0:
        return np.zeros((height, width) if ch == 1 else (height, width, ch), dtype)
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row), strides=(step, 1))
    out = np.ascontiguousarray(rows).view(dtype.newbyteorder('>' if is_bigendian else '<'))
    out = out.astype(dtype)  # to host order
    return out.reshape(height, width) if ch == 1 else out.reshape(height, width, ch)


def to_rgb(array: np.ndarray, encoding: str) -> np.ndarray:
    """Colour or mono image -> ``(H, W, 3)`` uint8 RGB (alpha dropped, mono replicated)."""
    a = np.asarray(array)
    if encoding in ('rgb8', '8UC3'):
        return a
    if encoding == 'bgr8':
        return np.ascontiguousarray(a[..., ::-1])
    if encoding == 'rgba8':
        return np.ascontiguousarray(a[..., :3])
    if encoding == 'bgra8':
        return np.ascontiguousarray(a[..., 2::-1])
    if encoding in ('mono8', '8UC1'):
        return np.repeat(a[..., None], 3, axis=-1)
    raise ImageEncodingError(f'encoding {encoding!r} is not a colour/mono 8-bit image; expected one of '
                             f'{COLOUR_ENCODINGS}')


def depth_to_metres(array: np.ndarray, encoding: str) -> np.ndarray:
    """Depth image -> ``(H, W)`` float32 metres, NaN where invalid (16UC1/mono16: millimetres, 0 invalid)."""
    a = np.asarray(array)
    if encoding == '32FC1':
        return a.astype(np.float32, copy=False)
    if encoding in ('16UC1', 'mono16'):
        out = a.astype(np.float32) * np.float32(1e-3)
        out[a == 0] = np.nan
        return out
    raise ImageEncodingError(f'encoding {encoding!r} is not a depth encoding; '
                             f'expected one of {DEPTH_ENCODINGS}')


def metres_to_depth16(depth: np.ndarray) -> np.ndarray:
    """float metres -> uint16 millimetres with 0 = invalid; NaN, inf, <= 0 and depths beyond the 16-bit range
    (65.535 m) become 0 rather than a wrong clipped value."""
    d = np.asarray(depth, np.float64)
    mm = np.rint(np.where(np.isfinite(d), d, 0.0) * 1000.0)
    mm = np.where((mm >= 1) & (mm <= 65535), mm, 0)
    return mm.astype(np.uint16)
