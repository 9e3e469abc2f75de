"""Launch dro_depth's sfm_node (monocular depth + odometry), optionally with RViz.

    ros2 launch dro_depth sfm.launch.py image_topic:=/camera/image_raw camera_info_topic:=/camera/camera_info
    ros2 launch dro_depth sfm.launch.py namespace:=robot1 device:=cuda iterations:=8 rviz:=true
    ros2 launch dro_depth sfm.launch.py use_sim_time:=true     # with `ros2 bag play --clock <bag>`
    ros2 launch dro_depth sfm.launch.py metric_checkpoint:=ZoeD_M12_NK.pt metric_domain:=indoor

Parameters come from ``params_file`` (default: the installed config/sfm.yaml); the launch arguments
checkpoint, device, iterations and metric* override it only when given (non-empty).

launch and launch_ros are imported inside the functions, so this file can be read (and checked by the
test suite) where they are not installed.
"""

PACKAGE = 'dro_depth'
EXECUTABLE = 'sfm_node'

# launch argument -> (default, description)
ARGUMENTS = {
    'params_file': ('', 'parameters YAML; empty = <share>/dro_depth/config/sfm.yaml'),
    'namespace': ('', 'namespace of the node and its topics'),
    'use_sim_time': ('false', 'use /clock (bag replay with --clock)'),
    'image_topic': ('image', 'input sensor_msgs/Image topic (rectified: image_rect or a pinhole camera)'),
    'camera_info_topic': ('camera_info', 'input sensor_msgs/CameraInfo topic (same stamps as the images)'),
    'checkpoint': ('', "DRO checkpoint; empty = keep params_file's value"),
    'device': ('', "torch device (auto, cpu, cuda, cuda:N); empty = keep params_file's value"),
    'iterations': ('', "DRO iterations per frame; empty = keep params_file's value"),
    'metric': ('', "metric depth and scale on/off (true/false); empty = keep params_file's value"),
    'metric_checkpoint': ('', "metric model file (light or released ZoeDepth); empty = keep params_file's "
                          'value'),
    'metric_domain': ('', "auto, indoor or outdoor; empty = keep params_file's value"),
    'log_level': ('info', 'node log level (debug, info, warn, error)'),
    'rviz': ('false', 'start rviz2 with rviz/sfm.rviz'),
}

# launch argument -> node parameter, set only when the argument is non-empty (with its type)
PARAMETER_OVERRIDES = {
    'checkpoint': ('checkpoint', str),
    'device': ('device', str),
    'iterations': ('iterations', int),
    'metric': ('metric.enabled', bool),
    'metric_checkpoint': ('metric.checkpoint', str),
    'metric_domain': ('metric.domain', str),
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
    from launch.actions import SetEnvironmentVariable
    from launch_ros.actions import Node

    def arg(name):
        return context.perform_substitution(_configuration(name)).strip()

    share = get_package_share_directory(PACKAGE)
    params_file = arg('params_file') or os.path.join(share, 'config', 'sfm.yaml')
    overrides = {'use_sim_time': _truthy(arg('use_sim_time'))}
    for launch_arg, (parameter, kind) in PARAMETER_OVERRIDES.items():
        value = arg(launch_arg)
        if value:
            overrides[parameter] = _truthy(value) if kind is bool else kind(value)

    actions = []
    profile_vars = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
    if not any(os.environ.get(v) for v in profile_vars):
        # Large shared-memory segments, so best-effort images are not lost (see dro_depth/ros/transport.py).
        try:
            from dro_depth.ros.transport import FASTDDS_PROFILE
            if FASTDDS_PROFILE.is_file():
                actions.append(SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', str(FASTDDS_PROFILE)))
        except ImportError:
            pass

    actions.append(Node(
        package=PACKAGE,
        executable=EXECUTABLE,
        name='sfm_node',
        namespace=arg('namespace'),
        output='screen',
        emulate_tty=True,
        parameters=[params_file, overrides],
        remappings=[(topic, arg(launch_arg)) for topic, launch_arg in REMAPPINGS.items()],
        ros_arguments=['--log-level', arg('log_level')],
    ))
    if _truthy(arg('rviz')):
        actions.append(Node(
            package='rviz2',
            executable='rviz2',
            name='rviz2',
            namespace=arg('namespace'),
            arguments=['-d', os.path.join(share, 'rviz', 'sfm.rviz')],
            remappings=[(topic, arg(launch_arg)) for topic, launch_arg in REMAPPINGS.items()],
            parameters=[{'use_sim_time': _truthy(arg('use_sim_time'))}],
            output='screen',
        ))
    return actions


def _configuration(name):
    from launch.substitutions import LaunchConfiguration

    return LaunchConfiguration(name)


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, (default, description) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_launch_setup)])
