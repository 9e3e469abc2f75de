"""Reading, validating and writing DRO weights.

Accepted sources:

* a released DRO ``.ckpt`` / ``.pt`` (a dict with ``state_dict`` whose keys carry a prefix such as
  ``model.depth_net.`` or ``depth_net.``, plus an optional ``config`` dict), read with
  ``torch.load(weights_only=True)``;
* a plain state dict (any of those prefixes, or none);
* a ``.safetensors`` file written by :func:`save_state_dict` (or any safetensors file holding a DRO
  state dict), with optional string metadata.

No pickled objects are ever executed.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dro_depth.errors import DroDepthError

__all__ = ['CheckpointError', 'DROCheckpoint', 'TOP_LEVEL_MODULES', 'read_checkpoint', 'strip_prefix',
           'infer_hidden_dim', 'parse_version', 'check_state_dict', 'save_state_dict', 'read_weights_source']

logger = logging.getLogger(__name__)

#: Top-level submodules of the official DepthPoseNet, in state-dict order.
TOP_LEVEL_MODULES = ('fnet', 'depth_head', 'pose_head', 'upmask_net', 'update_block_depth',
                     'update_block_pose', 'cnet', 'cnet_depth', 'cnet_pose')

CONTEXT_DIM = 32
_MAX_LISTED = 8


class CheckpointError(DroDepthError):
    """The file or mapping is not a (compatible) DRO checkpoint."""


@dataclass
class DROCheckpoint:
    """A DRO state dict without prefix plus what is known about its configuration."""

    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any] = field(default_factory=dict)
    source: str = '<mapping>'


def _listing(keys: Sequence[str]) -> str:
    keys = list(keys)
    shown = ', '.join(keys[:_MAX_LISTED])
    if len(keys) > _MAX_LISTED:
        shown += f', ... ({len(keys) - _MAX_LISTED} more)'
    return shown


def _is_safetensors(path: Path) -> bool:
    """By suffix, or by the header: an 8-byte length then JSON (a torch zip file starts with 'PK')."""
    with open(path, 'rb') as fh:
        head = fh.read(9)
    return path.suffix == '.safetensors' or (len(head) == 9 and head[:2] != b'PK' and head[8:9] == b'{')


def load_weights_file(path: Path) -> tuple[Any, dict[str, Any]]:
    """Read a weights file without unpickling objects: ``(contents, metadata)``.

    ``.safetensors`` (recognised by suffix or header) gives its tensors and JSON-decoded metadata;
    anything else goes through ``torch.load(weights_only=True)`` (metadata empty).

    Raises:
        FileNotFoundError: no such file. CheckpointError: unreadable, or it holds pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if _is_safetensors(path):
        from safetensors import safe_open
        from safetensors.torch import load_file
        try:
            tensors = load_file(str(path), device='cpu')
            with safe_open(str(path), framework='pt') as f:
                raw_meta = f.metadata() or {}
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f'{path}: not a readable safetensors file ({exc})') from exc
        meta: dict[str, Any] = {}
        for k, v in raw_meta.items():
            try:
                meta[k] = json.loads(v)
            except (json.JSONDecodeError, TypeError):
                meta[k] = v
        return tensors, meta
    try:
        obj = torch.load(str(path), map_location='cpu', weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f'{path}: cannot be read with torch.load(weights_only=True) ({type(exc).__name__}: {exc}). '
            'Only tensors and plain containers are accepted; re-save the state_dict alone '
            '(or as .safetensors) if the file holds pickled objects such as a yacs config.') from exc
    return obj, {}


def read_weights_source(source: Any, what: str) -> tuple[str, Any, dict[str, Any]]:
    """``(name, contents, metadata)`` of a weights source: a path (read by :func:`load_weights_file`, never
    unpickling objects) or an in-memory mapping (taken as it is, no metadata). ``what`` names the model in the
    error for any other type (TypeError). The caller checks the contents' structure.
    """
    if isinstance(source, (str, Path)):
        obj, meta = load_weights_file(Path(source))
        return str(source), obj, meta
    if isinstance(source, Mapping):
        return '<mapping>', source, {}
    raise TypeError(f'{what} weights must be a path or a mapping, got {type(source).__name__}')


def strip_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Remove the wrapper prefix (``model.depth_net.``, ``depth_net.``, ``module.``, ...) from keys.

    The prefix is whatever precedes the first path segment naming a DepthPoseNet top-level module; the
    most common prefix wins and every key must carry it.

    Raises:
        CheckpointError: no key names a DRO module, or keys carry different prefixes / no DRO module.
    """
    prefixes: dict[str, str] = {}
    for key in state_dict:
        parts = str(key).split('.')
        for i, part in enumerate(parts[:-1]):
            if part in TOP_LEVEL_MODULES:
                prefixes[key] = '.'.join(parts[:i]) + ('.' if i else '')
                break
    if not prefixes:
        raise CheckpointError('not a DRO state dict: no key names a DRO module '
                              f'({", ".join(TOP_LEVEL_MODULES)}); keys: {_listing(list(state_dict))}')
    prefix = Counter(prefixes.values()).most_common(1)[0][0]
    foreign = [k for k in state_dict if prefixes.get(k) != prefix]
    if foreign:
        raise CheckpointError(f'unexpected keys (not under the DRO prefix {prefix!r}): {_listing(foreign)}')
    return {k[len(prefix):]: v for k, v in state_dict.items()}


def infer_hidden_dim(state_dict: Mapping[str, torch.Tensor]) -> int:
    """GRU hidden size (128 for '-h' versions, 64 otherwise) from the tensor shapes.

    Raises:
        CheckpointError: the tensors needed to tell are missing or inconsistent.
    """
    probes = {
        'update_block_depth.depth_head.conv1.weight': lambda s: s[0],
        'update_block_pose.pose_head.conv1_pose.weight': lambda s: s[0],
        'cnet_depth.out_conv.weight': lambda s: s[0] - CONTEXT_DIM,
        'cnet_pose.out_conv.weight': lambda s: s[0] - CONTEXT_DIM,
    }
    found = {k: int(f(tuple(state_dict[k].shape))) for k, f in probes.items()
             if k in state_dict and torch.is_tensor(state_dict[k]) and state_dict[k].dim() == 4}
    if not found:
        raise CheckpointError('cannot infer the GRU hidden size: missing keys '
                              f'{_listing(list(probes))}')
    values = set(found.values())
    if len(values) != 1 or not values <= {64, 128}:
        raise CheckpointError(f'inconsistent GRU hidden size in checkpoint: {found} '
                              '(expected all 128 or all 64)')
    return values.pop()


def parse_version(version: str) -> dict[str, Any]:
    """Parse an official version string such as ``'it12-h'`` or ``'it8-h-out-seq4'``.

    Returns a dict with ``iterations``, ``seq_len``, ``hidden_dim``, ``out_normalize`` and ``version``.
    """
    if not isinstance(version, str) or not version.startswith('it'):
        raise CheckpointError(f'bad DRO version string {version!r} (expected e.g. "it12-h")')
    head = version.split('-')[0]
    try:
        iterations = int(head[2:])
    except ValueError as exc:
        raise CheckpointError(f'bad DRO version string {version!r}: no iteration count') from exc
    seq_len = 4
    for part in version.split('-'):
        if part.startswith('seq'):
            try:
                seq_len = int(part[3:])
            except ValueError as exc:
                raise CheckpointError(f'bad seq length in version {version!r}') from exc
    if seq_len < 1:
        raise CheckpointError(f'bad seq length in version {version!r}')
    return {'version': version, 'iterations': iterations, 'seq_len': seq_len,
            'hidden_dim': 128 if 'h' in version else 64, 'out_normalize': 'out' in version}


def read_checkpoint(source: str | Path | Mapping[str, Any]) -> DROCheckpoint:
    """Read DRO weights from a file or a mapping and strip any key prefix.

    Returns:
        :class:`DROCheckpoint` with tensors as stored (dtype unchanged) and a config dict that may hold
        ``version``, ``min_depth``, ``max_depth``, ``hidden_dim``, ``seq_len``, ``out_normalize``.

    Raises:
        CheckpointError: not a DRO checkpoint. FileNotFoundError: missing file. TypeError: bad source.
    """
    name, obj, meta = read_weights_source(source, 'DRO')
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'{name}: expected a dict, found {type(obj).__name__}')
    config: dict[str, Any] = dict(meta)
    if 'state_dict' in obj and isinstance(obj['state_dict'], Mapping):
        if isinstance(obj.get('config'), Mapping):
            cfg = obj['config']
            # released checkpoints nest the network settings under model.depth_net
            model_cfg = cfg.get('model')
            nested = model_cfg.get('depth_net', {}) if isinstance(model_cfg, Mapping) else {}
            nested = nested if isinstance(nested, Mapping) else {}
            for k in ('version', 'min_depth', 'max_depth'):
                if k in nested:
                    config[k] = nested[k]
                if k in cfg:
                    config[k] = cfg[k]
        obj = obj['state_dict']
    non_tensors = [str(k) for k, v in obj.items() if not torch.is_tensor(v)]
    if non_tensors:
        raise CheckpointError(f'{name}: not a state dict, entries that are not tensors: '
                              f'{_listing(non_tensors)}')
    sd = strip_prefix(obj)
    version = config.get('version')
    if version is not None:
        try:
            config.update({k: v for k, v in parse_version(str(version)).items() if k not in config})
        except CheckpointError as exc:
            logger.warning('%s: ignoring version string: %s', name, exc)
    return DROCheckpoint(state_dict=sd, config=config, source=name)


def check_state_dict(expected: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor],
                     source: str = '<mapping>', error: type = None) -> None:
    """Strict key and shape check of ``state_dict`` against a model's ``expected`` state dict.

    Raises:
        CheckpointError (or the given subclass ``error``): naming missing keys, unexpected keys and shape
        mismatches.
    """
    error = error or CheckpointError
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}'
                  for k in expected if k in state_dict and state_dict[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f'missing keys ({len(missing)}): {_listing(missing)}')
    if unexpected:
        problems.append(f'unexpected keys ({len(unexpected)}): {_listing(unexpected)}')
    if mismatched:
        problems.append(f'shape mismatches ({len(mismatched)}): {_listing(mismatched)}')
    if problems:
        raise error(f'{source}: not a compatible checkpoint; ' + '; '.join(problems))


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | Path,
                    metadata: Mapping[str, Any] | None = None, half: bool = False) -> Path:
    """Write a state dict as safetensors.

    Args:
        state_dict: tensors (any device); floating tensors are stored as float16 when ``half``.
        path: output file (``.safetensors`` is appended if missing).
        metadata: JSON-serialisable values stored in the safetensors header.
        half: store floating tensors as float16 (about half the size).

    Raises:
        ValueError: a value does not fit float16 when ``half`` is set.
    """
    from safetensors.torch import save_file
    path = Path(path)
    if path.suffix != '.safetensors':
        path = path.with_name(path.name + '.safetensors')
    tensors: dict[str, torch.Tensor] = {}
    for k, v in state_dict.items():
        t = v.detach().to('cpu')
        if half and t.is_floating_point():
            t16 = t.to(torch.float16)
            if not bool(torch.isfinite(t16).all()) and bool(torch.isfinite(t).all()):
                raise ValueError(f'{k}: values overflow float16; save with half=False')
            t = t16
        tensors[k] = t.contiguous().clone()
    meta = {str(k): json.dumps(v) for k, v in (metadata or {}).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path
