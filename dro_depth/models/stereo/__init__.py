"""RAFT-Stereo (MIT), weight-compatible with NeRF-Supervised ``raftstereo-NS.tar`` and
``raftstereo-realtime``.

Main entry points:

- :func:`load_raft_stereo` - the network from a released file or state dict (strict, weights-only).
- :class:`RAFTStereo` - ``model(left, right, iters, test_mode=True) -> (flow_low, flow_up)`` on padded
  input; ``model.disparity(left, right, iters=32)`` -> positive disparity on unpadded input.
- :data:`NS_RELEASE`, :data:`REALTIME` - the two layouts (realtime: the fast CPU variant).
"""
from .config import NS_RELEASE, REALTIME, RaftStereoConfig
from .corr import CorrPyramid1D
from .loading import infer_config, load_raft_stereo, read_raft_stereo_state_dict
from .padding import InputPadder
from .raft_stereo import RAFTStereo, StereoInputError, StereoIteration, convex_upsample

__all__ = ['CorrPyramid1D', 'InputPadder', 'NS_RELEASE', 'RAFTStereo', 'REALTIME', 'RaftStereoConfig',
           'StereoInputError', 'StereoIteration', 'convex_upsample', 'infer_config', 'load_raft_stereo',
           'read_raft_stereo_state_dict']
