"""Streaming structure from motion: :class:`SfmEstimator` (one frame in, depth and pose out) and its keyframe window.

May import geometry, models and backends; never training, evaluation, bench or ros.
"""
from .estimator import EstimatorConfig, FrameResult, SfmEstimator, TrackingState
from .window import Keyframe, KeyframePolicy, KeyframeWindow

__all__ = ['EstimatorConfig', 'FrameResult', 'Keyframe', 'KeyframePolicy', 'KeyframeWindow', 'SfmEstimator',
           'TrackingState']
