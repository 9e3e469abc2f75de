"""Bundled model files.

``dro_default.safetensors`` (with ``dro_default.yaml`` describing how it was trained) is the default DRO
model used when no checkpoint is given; ``metric_default.safetensors`` (``metric_default.yaml``) the
default light metric-depth model of the node's metric branch. When a file is missing, the functions
return ``None`` and callers say clearly what is missing (untrained DRO, no metric model).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

WEIGHTS_DIR = Path(__file__).resolve().parent
DEFAULT_DRO = 'dro_default.safetensors'
DEFAULT_METRIC = 'metric_default.safetensors'


def _bundled(name: str) -> Optional[Path]:
    path = WEIGHTS_DIR / name
    return path if path.is_file() else None


def default_dro_checkpoint() -> Optional[Path]:
    """Path of the bundled default DRO model, or None if the package ships none."""
    return _bundled(DEFAULT_DRO)


def default_metric_checkpoint() -> Optional[Path]:
    """Path of the bundled default light metric-depth model, or None if the package ships none."""
    return _bundled(DEFAULT_METRIC)
