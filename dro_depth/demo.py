"""``python -m dro_depth.demo`` / ``make demo``: the ROS demo (see :mod:`dro_depth.ros.demo`)."""
import sys

from dro_depth.ros.demo import main

__all__ = ['main']

if __name__ == '__main__':
    sys.exit(main())
