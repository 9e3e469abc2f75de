"""The Fast DDS profile shipped with the package, and setting it for a process.

Fast DDS's default shared-memory segment (512 KiB) cannot hold one 640x480 image, so best-effort images
fall back to fragmented UDP on loopback, where most of them are lost at camera rates (measured here:
19 of 90 frames of 640x480 rgb8 at 30 Hz arrived). ``dro_depth/fastdds/large_shm.xml`` gives each
participant a 32 MiB segment (all 90 arrive). The node, launch file, tests and demo set
``FASTDDS_DEFAULT_PROFILES_FILE`` to it when the variable is unset (a user's own profile wins).

The profile also makes sample payloads dynamic (allocated per sample, freed after): rmw_fastrtps's default
keeps every history slot at the largest sample it ever held (after one 3840x2160 frame the node kept
~100 MiB of depth-sized payloads). rmw_fastrtps applies an XML history memory policy only with
``RMW_FASTRTPS_USE_QOS_FROM_XML=1``, so that is set (when unset) together with the shipped profile; the
QoS given in code still applies.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping, Optional

__all__ = ['FASTDDS_PROFILE', 'PROFILE_ENV', 'QOS_FROM_XML_ENV', 'ensure_fastdds_profile']

FASTDDS_PROFILE = Path(__file__).resolve().parents[1] / 'fastdds' / 'large_shm.xml'
PROFILE_ENV = 'FASTDDS_DEFAULT_PROFILES_FILE'
_LEGACY_ENV = 'FASTRTPS_DEFAULT_PROFILES_FILE'
QOS_FROM_XML_ENV = 'RMW_FASTRTPS_USE_QOS_FROM_XML'


def ensure_fastdds_profile(env: Optional[MutableMapping[str, str]] = None) -> Optional[str]:
    """Point ``FASTDDS_DEFAULT_PROFILES_FILE`` at the shipped profile unless a profile is already set.

    Must run before the process creates its first ROS node (``rclpy.init`` alone is fine).

    Args:
        env: the environment to change (``os.environ`` by default; pass a copy for a subprocess).

    Returns:
        The profile path now in effect, or None when none is (the shipped file is missing).
    """
    env = os.environ if env is None else env
    for name in (PROFILE_ENV, _LEGACY_ENV):
        if env.get(name):
            if env[name] == str(FASTDDS_PROFILE):   # ours, set by a parent (the launch file)
                env.setdefault(QOS_FROM_XML_ENV, '1')
            return env[name]
    if not FASTDDS_PROFILE.is_file():
        return None
    env[PROFILE_ENV] = str(FASTDDS_PROFILE)
    env.setdefault(QOS_FROM_XML_ENV, '1')          # keep the profile's history memory policy (see above)
    return env[PROFILE_ENV]
