"""On-disk engine cache: one folder per key, a manifest of file hashes, rebuilt when corrupt.

Nothing is read from disk unless the caller configured a cache directory: ``EngineCache(None)`` is off.
The key covers the weights (:func:`module_hash`), shapes, backend, precision and library versions, so a
stale artefact is never picked up.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import torch
from torch import nn

__all__ = ['EngineCache', 'module_hash', 'cache_key']

logger = logging.getLogger(__name__)
_MANIFEST = 'manifest.json'


def module_hash(module: nn.Module) -> str:
    """sha256 (hex) of the names, dtypes, shapes and values of ``module``'s parameters and buffers."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(f'{name}:{t.dtype}:{tuple(t.shape)};'.encode())
        if t.is_floating_point() or t.dtype in (torch.int64, torch.int32, torch.uint8, torch.bool):
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cache_key(fields: Mapping[str, Any]) -> str:
    """Short stable hex key of a JSON-serialisable mapping."""
    text = json.dumps(dict(fields), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


class EngineCache:
    """Engine artefacts under ``directory`` (None: no cache, every compile starts from the network).

    Args:
        directory: a folder the user configured; created on first store.
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory).expanduser() if directory else None

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def entry(self, key: str) -> Optional[Path]:
        """Folder of ``key`` (None when the cache is off)."""
        return None if self.directory is None else self.directory / key

    def lookup(self, key: str, fields: Mapping[str, Any]) -> tuple[Optional[Path], str]:
        """``(folder, state)``: the verified entry of ``key`` and 'hit', or None and 'miss' / 'rebuilt' /
        'off'.

        A folder whose manifest is missing, names other fields, or whose files do not match their hashes
        is deleted (state 'rebuilt').
        """
        folder = self.entry(key)
        if folder is None:
            return None, 'off'
        if not folder.exists():
            return None, 'miss'
        problem = self._verify(folder, fields)
        if not problem:
            return folder, 'hit'
        logger.warning('engine cache entry %s is unusable (%s): rebuilding it', folder, problem)
        shutil.rmtree(folder, ignore_errors=True)
        return None, 'rebuilt'

    @staticmethod
    def _verify(folder: Path, fields: Mapping[str, Any]) -> str:
        try:
            manifest = json.loads((folder / _MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            return f'manifest unreadable: {exc}'
        if manifest.get('fields') != json.loads(json.dumps(dict(fields), sort_keys=True, default=str)):
            return 'manifest describes another network'
        for name, digest in dict(manifest.get('files', {})).items():
            path = folder / name
            if not path.is_file() or _file_hash(path) != digest:
                return f'{name} is missing or does not match its hash'
        return '' if manifest.get('files') else 'manifest lists no files'

    def store(self, key: str, fields: Mapping[str, Any], folder: Path) -> None:
        """Write the manifest of the files now in ``folder`` (the entry of ``key``)."""
        files = {p.name: _file_hash(p) for p in sorted(folder.iterdir())
                 if p.is_file() and p.name != _MANIFEST}
        fields_json = json.loads(json.dumps(dict(fields), sort_keys=True, default=str))
        manifest = {'fields': fields_json, 'files': files}
        tmp = folder / (_MANIFEST + '.tmp')
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        tmp.replace(folder / _MANIFEST)

    def versions(self) -> Dict[str, str]:
        """Library versions that go into every key."""
        out = {'torch': torch.__version__}
        for name in ('openvino', 'tensorrt'):
            try:
                out[name] = __import__(name).__version__
            except Exception:  # noqa: BLE001 - not installed or broken: not part of the key
                out[name] = ''
        return out
