"""Metric scale: the per-image metric-depth estimator, indoor/outdoor route hysteresis, the scale estimate and
filter, and the scaler that turns the SfM estimator's DRO units into metres without odometry jumps.

May import geometry, sfm (result types), models and backends; never training, evaluation, bench or ros.
"""
