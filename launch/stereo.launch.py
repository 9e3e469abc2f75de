"""Launch dro_depth's stereo_node (RAFT-Stereo: rectified left/right -> disparity, metric depth, points).

    ros2 launch dro_depth stereo.launch.py left_image_topic:=/cam/left/image_rect \
        left_info_topic:=/cam/left/camera_info right_image_topic:=/cam/right/image_rect \
        right_info_topic:=/cam/right/camera_info
    ros2 launch dro_depth stereo.launch.py checkpoint:=raftstereo-NS.tar iterations:=32 device:=cuda

Parameters come from ``params_file`` (default: the installed config/stereo.yaml); checkpoint, device and
iterations override it only when given (non-empty). launch / launch_ros are imported inside the functions,
so this file can be read where they are not installed.
"""

PACKAGE = 'dro_depth'
EXECUTABLE = 'stereo_node'

# launch argument -> (default, description)
ARGUMENTS = {
    'params_file': ('', 'parameters YAML; empty = <share>/dro_depth/config/stereo.yaml'),
    'namespace': ('', 'namespace of the node and its topics'),
    'use_sim_time': ('false', 'use /clock (bag replay with --clock)'),
    'left_image_topic': ('left/image_rect', 'rectified left sensor_msgs/Image'),
    'left_info_topic': ('left/camera_info', 'left sensor_msgs/CameraInfo (same stamps as the images)'),
    'right_image_topic': ('right/image_rect', 'rectified right sensor_msgs/Image'),
    'right_info_topic': ('right/camera_info', 'right sensor_msgs/CameraInfo (P[0,3] = -fx * baseline)'),
    'checkpoint': ('', "RAFT-Stereo weights; empty = keep params_file's value"),
    'device': ('', "torch device (cpu, cuda, cuda:N); empty = keep params_file's value"),
    'iterations': ('', "GRU iterations; empty = keep params_file's value"),
    'log_level': ('info', 'node log level (debug, info, warn, error)'),
}

# launch argument -> node parameter, set only when the argument is non-empty (with its type)
PARAMETER_OVERRIDES = {
    'checkpoint': ('checkpoint', str),
    'device': ('device', str),
    'iterations': ('iterations', int),
}

# node topic -> launch argument giving the remapped name
REMAPPINGS = {
    'left/image_rect': 'left_image_topic',
    'left/camera_info': 'left_info_topic',
    'right/image_rect': 'right_image_topic',
    'right/camera_info': 'right_info_topic',
}


def _truthy(text):
    return str(text).strip().lower() in ('1', 'true', 'yes', 'on')


def _launch_setup(context, *args, **kwargs):
    import os

    from ament_index_python.packages import get_package_share_directory
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def arg(name):
        return context.perform_substitution(LaunchConfiguration(name)).strip()

    share = get_package_share_directory(PACKAGE)
    params_file = arg('params_file') or os.path.join(share, 'config', 'stereo.yaml')
    overrides = {'use_sim_time': _truthy(arg('use_sim_time'))}
    for launch_arg, (parameter, kind) in PARAMETER_OVERRIDES.items():
        value = arg(launch_arg)
        if value:
            overrides[parameter] = kind(value)
    return [Node(package=PACKAGE, executable=EXECUTABLE, name='stereo_node', namespace=arg('namespace'),
                 output='screen', emulate_tty=True, parameters=[params_file, overrides],
                 remappings=[(topic, arg(launch_arg)) for topic, launch_arg in REMAPPINGS.items()],
                 ros_arguments=['--log-level', arg('log_level')])]


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, (default, description) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_launch_setup)])
