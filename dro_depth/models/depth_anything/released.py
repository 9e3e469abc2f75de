"""What a released Depth Anything V2 file name says: metric indoor / outdoor or relative, and the metres of
a metric model's sigmoid output 1.

Released names: ``depth_anything_v2_vit{s,b,l}.pth`` (relative),
``depth_anything_v2_metric_hypersim_vit{s,b,l}.pth`` (indoor, 20 m) and
``depth_anything_v2_metric_vkitti_vit{s,b,l}.pth`` (outdoor, 80 m). Metric and relative files have the same
keys and shapes, so the name is the only thing that tells them apart.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ['MAX_DEPTH', 'checkpoint_kind']

#: Metres of a sigmoid output of 1 per route (released: Hypersim 20 m, Virtual KITTI 2 80 m).
MAX_DEPTH = {'indoor': 20.0, 'outdoor': 80.0}


def checkpoint_kind(path: str | Path) -> str | None:
    """'indoor', 'outdoor' or 'relative' from a released Depth Anything V2 file name; None if unknown."""
    name = Path(path).name.lower()
    if 'hypersim' in name:
        return 'indoor'
    if 'vkitti' in name or 'kitti' in name:
        return 'outdoor'
    if name.startswith(('depth_anything_v2_vit', 'depth_anything_vit')):
        return 'relative'
    return None
