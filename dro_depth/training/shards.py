"""Split a safetensors model into files of at most N bytes, and join them back (weights only).

Shards are ``<stem>.part-000.safetensors`` ... plus ``<stem>.index.json`` naming them; each shard carries
the original metadata, so :func:`join_shards` rebuilds an equivalent single file that ``load_dro`` reads.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

__all__ = ['write_shards', 'join_shards']

_HEADER_SLACK = 64 * 1024      # bytes reserved per shard for the JSON header


def write_shards(path: str | Path, out_dir: str | Path, max_bytes: int = 16_000_000) -> List[Path]:
    """Write the tensors of ``path`` into ``out_dir`` as shards of at most ``max_bytes`` bytes each.

    Raises:
        ValueError: one tensor alone is larger than ``max_bytes``.
    """
    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(path))
    with safe_open(str(path), 'pt') as f:
        metadata = f.metadata() or {}
    groups: List[Dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(tensors):
        n = tensors[key].numel() * tensors[key].element_size()
        if n > max_bytes - _HEADER_SLACK:
            raise ValueError(f'tensor {key} has {n} bytes, more than a shard of {max_bytes} bytes can hold')
        if size + n > max_bytes - _HEADER_SLACK and groups[-1]:
            groups.append({})
            size = 0
        groups[-1][key] = tensors[key].contiguous()
        size += n
    names = []
    for i, group in enumerate(groups):
        name = out_dir / f'{path.stem}.part-{i:03d}.safetensors'
        save_file(group, str(name), metadata=metadata)
        names.append(name)
    index = {'shards': [n.name for n in names]}
    (out_dir / f'{path.stem}.index.json').write_text(json.dumps(index, indent=1))
    return names


def join_shards(index: str | Path, out_path: str | Path) -> Path:
    """Rebuild one safetensors file from ``<stem>.index.json`` and its shards."""
    index = Path(index)
    names = json.loads(index.read_text())['shards']
    tensors: Dict[str, torch.Tensor] = {}
    metadata: Dict[str, str] = {}
    for name in names:
        tensors.update(load_file(str(index.parent / name)))
        with safe_open(str(index.parent / name), 'pt') as f:
            metadata = f.metadata() or metadata
    save_file(tensors, str(out_path), metadata=metadata)
    return Path(out_path)
