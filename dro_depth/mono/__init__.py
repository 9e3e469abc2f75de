"""Single-image depth (Depth Anything V2): pure core, no ROS.

    est = MonoDepthEstimator(MonoDepthConfig(checkpoint='depth_anything_v2_metric_hypersim_vits.pth',
                                             metric=True, max_depth=20.0))
    pred = est.predict(rgb)          # (H, W, 3) uint8 RGB
    pred.depth                       # (H, W) float32 metres (metric checkpoints), else None
    pred.relative                    # (H, W) float32 affine-invariant inverse depth (relative checkpoints)
"""
from .estimator import MonoDepthConfig, MonoDepthEstimator, MonoPrediction

__all__ = ['MonoDepthConfig', 'MonoDepthEstimator', 'MonoPrediction']
