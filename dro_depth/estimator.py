"""Stable import path of the streaming estimator (now in :mod:`dro_depth.sfm.estimator`)."""
from dro_depth.sfm.estimator import *  # noqa: F401,F403
from dro_depth.sfm.estimator import __all__  # noqa: F401
