"""Where the shared reference data lives: ``$DRO_DEPTH_REFERENCE`` or ``<checkout>/../shared/reference``.

CI clones the repository beside ``shared/``; tests that need a folder skip with a clear reason without it.
"""
import os
from pathlib import Path


def reference_dir(name: str) -> Path:
    """The reference folder of one model family ('dro', 'zoedepth', 'depth_anything', 'stereo')."""
    env = os.environ.get('DRO_DEPTH_REFERENCE')
    root = Path(env) if env else Path(__file__).resolve().parents[2] / 'shared' / 'reference'
    return root / name
