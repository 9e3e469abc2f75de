"""Launch dro_depth's mono_depth_node (Depth Anything V2 alone: one image -> depth, relative_depth, points).

    ros2 launch dro_depth mono_depth.launch.py \
        checkpoint:=/models/depth_anything_v2_metric_hypersim_vits.pth \
        image_topic:=/camera/image_rect camera_info_topic:=/camera/camera_info
    ros2 launch dro_depth mono_depth.launch.py checkpoint:=/models/depth_anything_v2_vits.pth input_size:=308

A metric checkpoint (Hypersim 20 m / Virtual KITTI 80 m) publishes depth (metres, REP 118), depth/camera_info,
points and relative_depth; a relative one publishes relative_depth only (affine-invariant inverse depth).
Parameters come from ``params_file`` (default: the installed config/mono_depth.yaml); checkpoint, kind,
device, input_size and precision override it only when given (non-empty). launch / launch_ros are imported
inside the functions, so this file can be read where they are not installed.
"""

PACKAGE = 'dro_depth'
EXECUTABLE = 'mono_depth_node'

# launch argument -> (default, description)
ARGUMENTS = {
    'params_file': ('', 'parameters YAML; empty = <share>/dro_depth/config/mono_depth.yaml'),
    'namespace': ('', 'namespace of the node and its topics'),
    'use_sim_time': ('false', 'use /clock (bag replay with --clock)'),
    'image_topic': ('image', 'input sensor_msgs/Image (rgb8, bgr8, mono8, rgba8, bgra8)'),
    'camera_info_topic': ('camera_info', 'input sensor_msgs/CameraInfo (same stamps as the images)'),
    'checkpoint': ('', 'Depth Anything V2 weights (required: none bundled); empty = keep '
                       "params_file's value"),
    'kind': ('', "auto | metric | relative; empty = keep params_file's value (auto: from the file name)"),
    'device': ('', "torch device (auto, cpu, cuda, cuda:N); empty = keep params_file's value"),
    'input_size': ('', "network input lower bound (518 released; smaller is faster); empty = keep "
                       "params_file's value"),
    'precision': ('', "fp32 | bf16; empty = keep params_file's value"),
    'log_level': ('info', 'node log level (debug, info, warn, error)'),
}

# launch argument -> node parameter, set only when the argument is non-empty (with its type)
PARAMETER_OVERRIDES = {
    'checkpoint': ('checkpoint', str),
    'kind': ('kind', str),
    'device': ('device', str),
    'input_size': ('input_size', int),
    'precision': ('precision', str),
}

# node topic -> launch argument giving the remapped name
REMAPPINGS = {
    'image': 'image_topic',
    'camera_info': 'camera_info_topic',
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
    params_file = arg('params_file') or os.path.join(share, 'config', 'mono_depth.yaml')
    overrides = {'use_sim_time': _truthy(arg('use_sim_time'))}
    for launch_arg, (parameter, kind) in PARAMETER_OVERRIDES.items():
        value = arg(launch_arg)
        if value:
            overrides[parameter] = kind(value)
    return [Node(package=PACKAGE, executable=EXECUTABLE, name='mono_depth_node', namespace=arg('namespace'),
                 output='screen', emulate_tty=True, parameters=[params_file, overrides],
                 remappings=[(topic, arg(launch_arg)) for topic, launch_arg in REMAPPINGS.items()],
                 ros_arguments=['--log-level', arg('log_level')])]


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, (default, description) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_launch_setup)])
