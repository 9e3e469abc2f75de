"""Datasets for dro_depth: synthetic scenes, ROS 2 bags, plain folders and a training dataset.

- :mod:`dro_depth.data.synthetic` - rendered sequences with exact depth/poses (mono, stereo, triplets),
  built from :mod:`~dro_depth.data.scenes`, :mod:`~dro_depth.data.trajectories`,
  :mod:`~dro_depth.data.raycast` and :mod:`~dro_depth.data.textures`;
- :mod:`dro_depth.data.bags` / :mod:`dro_depth.data.bag_writer` - ROS 2 bags via ``rosbags`` (no rclpy);
- :mod:`dro_depth.data.folders` - image folders with intrinsics, depth and TUM poses;
- :mod:`dro_depth.data.sequence` - the :class:`Sequence` / :class:`Frame` containers and conventions;
- :mod:`dro_depth.data.dataset` - torch ``Dataset`` of (target, refs, K, depth, relative poses).

Submodules are imported explicitly (this package imports nothing heavy on its own).
"""
