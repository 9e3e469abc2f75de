"""Geometry: the pinhole camera model built from CameraInfo, SE(3) and pose vectors, pixel-centre warping.

Pure numpy/torch; imports nothing else from dro_depth. The pixel convention of the whole package
(pixel centres at integer coordinates, as in OpenCV and image_geometry) is stated once in
:mod:`dro_depth.geometry.camera`; DRO's feature warper keeps the released code's grid convention
(:mod:`dro_depth.models.feature_warp`).
"""
from .camera import *  # noqa: F401,F403
from .camera import __all__ as _camera_all
from .image_warp import backproject, warp_to_target

__all__ = [*_camera_all, 'backproject', 'warp_to_target']
