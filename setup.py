"""ament_python package dro_depth.

`colcon build` and `pip install .` both install:
- the resource marker and package.xml (so ament_index finds the package),
- launch/config/rviz files into share/dro_depth,
- the node executables into lib/dro_depth (where launch_ros looks for them).
"""
from glob import glob

from setuptools import find_packages, setup

package_name = 'dro_depth'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    package_data={'dro_depth': ['weights/*.safetensors', 'weights/*.json', 'weights/*.yaml',
                                'configs/*.yaml', 'fastdds/*.xml']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        ('share/' + package_name + '/rviz', glob('rviz/*.rviz')),
        # pip wheels put console scripts into bin/; launch_ros needs lib/<package>/.
        ('lib/' + package_name, glob('scripts/*')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='dro_depth maintainers',
    maintainer_email='dro-depth@example.com',
    description='Monocular dense depth, pose and odometry for ROS 2 (DRO + ZoeDepth).',
    license='MIT',
    entry_points={
        'console_scripts': [
            'dro-depth = dro_depth.cli:main',
            # colcon (setup.cfg) installs console scripts into lib/dro_depth; pip into bin/. The data_files
            # copy of scripts/sfm_node gives pip installs the lib/dro_depth executable launch_ros needs.
            'sfm_node = dro_depth.ros.sfm_node:main',
            'stereo_node = dro_depth.ros.stereo_node:main',
            'mono_depth_node = dro_depth.ros.mono_depth_node:main',
        ],
    },
)
