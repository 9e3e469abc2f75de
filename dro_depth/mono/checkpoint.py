"""Which Depth Anything V2 model a checkpoint file holds, checked against what the user asked for.

Metric and relative files have the same keys and shapes, so the kind comes from the released file name
(:mod:`dro_depth.models.depth_anything.released`) or is stated (``kind='metric'`` / ``'relative'``); a
stated kind that contradicts the name is refused. The encoder and the block count come from the tensors
(``pretrained.cls_token`` width, ``pretrained.blocks.N``), so reduced models load without extra settings;
their hooked blocks default to the last block of each quarter (``(0, 1, 2, 3)`` for 4 blocks,
``(2, 5, 8, 11)`` for 12).

    ckpt, model = open_mono_checkpoint('depth_anything_v2_metric_hypersim_vits.pth')
    ckpt.metric, ckpt.max_depth        # True, 20.0
    est = MonoDepthEstimator(ckpt.config(input_size=518), model=model)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dro_depth.errors import ConfigError
from dro_depth.models.checkpoints import CheckpointError
from dro_depth.models.depth_anything import (ENCODERS, DepthAnythingV2, describe_checkpoint,
                                             load_depth_anything, read_depth_anything_state_dict)
from dro_depth.models.depth_anything.released import MAX_DEPTH, checkpoint_kind
from .estimator import MonoDepthConfig

__all__ = ['KINDS', 'MonoCheckpoint', 'open_mono_checkpoint', 'quarter_hooks']

KINDS = ('auto', 'metric', 'relative')
_BY_WIDTH = {int(spec['embed_dim']): name for name, spec in ENCODERS.items()}


@dataclass(frozen=True)
class MonoCheckpoint:
    """A resolved Depth Anything V2 checkpoint.

    Attributes:
        path: the file.
        metric: sigmoid x ``max_depth`` metres (True) or ReLU affine-invariant inverse depth (False).
        max_depth: metres of a sigmoid output of 1 (metric only; 0.0 for relative).
        encoder: 'vits' | 'vitb' | 'vitl'.
        depth / hooks: block count and hooked blocks when they differ from the released ones, else None.
        kind_from: where the kind came from: 'file name' or 'parameter'.
    """

    path: str
    metric: bool
    max_depth: float
    encoder: str
    depth: int | None
    hooks: tuple[int, ...] | None
    kind_from: str

    def config(self, **settings) -> MonoDepthConfig:
        """The estimator config for this checkpoint plus run settings (input_size, precision, backend...)."""
        return MonoDepthConfig(checkpoint=self.path, encoder=self.encoder, metric=self.metric,
                               max_depth=self.max_depth if self.metric else 20.0, depth=self.depth,
                               hooks=self.hooks, **settings)

    def describe(self) -> str:
        """One line for the start-up log."""
        kind = f'metric, sigmoid 1 = {self.max_depth:g} m' if self.metric else \
            'relative: affine-invariant inverse depth, no metres'
        arch = '' if self.depth is None else f', {self.depth} blocks, hooks {self.hooks}'
        return f'Depth Anything V2 {self.encoder} ({kind}; kind from {self.kind_from}{arch}) from {self.path}'


def quarter_hooks(depth: int) -> tuple[int, ...]:
    """The last block of each quarter of ``depth`` blocks: 4 -> (0, 1, 2, 3), 12 -> (2, 5, 8, 11)."""
    return tuple((i + 1) * depth // 4 - 1 for i in range(4))


def _kind(path: str, kind: str, max_depth: float) -> tuple[bool, float, str]:
    """``(metric, max_depth, kind_from)`` from the stated kind and the file name."""
    if kind not in KINDS:
        raise ConfigError(f'kind must be one of {KINDS}, got {kind!r}')
    named = checkpoint_kind(path)
    if kind == 'auto':
        if named is None:
            raise ConfigError(f'{path}: the file name does not say whether this Depth Anything V2 checkpoint '
                              'is metric or relative (released names: depth_anything_v2_vits.pth, '
                              "..._metric_hypersim_vits.pth, ..._metric_vkitti_vits.pth): set kind to "
                              "'metric' "
                              "(and its max depth: mono_depth_node parameter metric_max_depth) or 'relative'")
        kind = 'relative' if named == 'relative' else 'metric'
        source = 'file name'
    else:
        source = 'parameter'
    if kind == 'metric' and named == 'relative':
        raise ConfigError(f'{path} is a relative Depth Anything V2 checkpoint (affine-invariant inverse '
                          "depth, no metres) but kind is 'metric': set kind 'relative' (publishes "
                          'relative_depth only) or '
                          'use a metric (hypersim / vkitti) checkpoint')
    if kind == 'relative' and named in MAX_DEPTH:
        raise ConfigError(f'{path} is a metric ({named}) Depth Anything V2 checkpoint but kind is '
                          "'relative': "
                          "set kind 'metric' or 'auto'")
    if kind == 'relative':
        return False, 0.0, source
    if max_depth <= 0:
        if named not in MAX_DEPTH:
            raise ConfigError(f'{path}: metric checkpoint without a released name (hypersim / vkitti): set '
                              'its max depth (mono_depth_node parameter metric_max_depth) to the metres of '
                              'its '
                              'sigmoid output 1 (20 Hypersim, 80 Virtual KITTI)')
        max_depth = MAX_DEPTH[named]
    return True, float(max_depth), source


def _architecture(path: str, state_dict: dict, encoder: str, depth: int,
                  hooks: tuple[int, ...]) -> tuple[str, int | None, tuple[int, ...] | None]:
    """``(encoder, depth override, hooks override)`` from the tensors and the stated values."""
    found = describe_checkpoint(state_dict)
    if encoder == 'auto':
        encoder = _BY_WIDTH.get(found['embed_dim'] or -1, '')
        if not encoder:
            raise CheckpointError(f'{path}: embedding width {found["embed_dim"]} is none of the supported '
                                  f'encoders ({", ".join(f"{k} {v}" for v, k in _BY_WIDTH.items())})')
    elif encoder not in ENCODERS:
        raise ConfigError(f"encoder must be 'auto' or one of {', '.join(ENCODERS)}, got {encoder!r}")
    depth = int(depth) or int(found['depth'])
    released = ENCODERS[encoder]
    if depth == released['depth'] and not hooks:
        return encoder, None, None
    hooks = tuple(int(h) for h in hooks) if hooks else quarter_hooks(depth)
    if len(hooks) != 4 or any(not 0 <= h < depth for h in hooks):
        raise ConfigError(f'{path}: hooks {hooks} must be 4 block indices in [0, {depth}) (a model with '
                          f'{depth} blocks)')
    return encoder, depth, hooks


def open_mono_checkpoint(path: str | Path, *, kind: str = 'auto', encoder: str = 'auto',
                         max_depth: float = 0.0, depth: int = 0, hooks: tuple[int, ...] = (),
                         device: torch.device | str = 'cpu') -> tuple[MonoCheckpoint, DepthAnythingV2]:
    """Resolve and load a Depth Anything V2 checkpoint (read once, weights-only, strict).

    Args:
        path: the ``.pth`` / ``.pt`` / ``.safetensors`` file.
        kind: 'auto' (from the released file name), 'metric' or 'relative'.
        encoder: 'auto' (from the embedding width) or 'vits' / 'vitb' / 'vitl' (a mismatch is refused).
        max_depth: metric only: metres of a sigmoid output of 1; 0 = from the file name (hypersim 20,
            vkitti 80).
        depth / hooks: block count (0 = from the tensors) and hooked blocks (() = released, or the last block
            of each quarter for another block count).

    Raises:
        ConfigError: no path, or a kind that the file name contradicts / cannot settle.
        CheckpointError: not a Depth Anything V2 file (e.g. ZoeDepth), an encoder mismatch, missing /
            unexpected / mis-shaped keys (the message starts with the path). FileNotFoundError: no such file.
    """
    path = str(path)
    if not path:
        raise ConfigError('checkpoint is required: no Depth Anything V2 weights are bundled; set it to a '
                          'released '
                          'file (Small, Apache-2.0: depth_anything_v2_vits.pth or '
                          'depth_anything_v2_metric_hypersim_vits.pth) or your own')
    if not Path(path).is_file():
        raise FileNotFoundError(f'Depth Anything V2 checkpoint not found: {path}')
    metric, max_depth, kind_from = _kind(path, kind, float(max_depth))
    state_dict = read_depth_anything_state_dict(path)
    encoder, depth_override, hooks_override = _architecture(path, state_dict, encoder, depth, tuple(hooks))
    try:
        model = load_depth_anything(state_dict, encoder=encoder, metric=metric,
                                    max_depth=max_depth if metric else 20.0, depth=depth_override,
                                    hooks=hooks_override, device=device)
    except CheckpointError as exc:
        raise CheckpointError(str(exc).replace('<mapping>', path, 1)) from None
    return MonoCheckpoint(path, metric, max_depth, encoder, depth_override, hooks_override, kind_from), model
