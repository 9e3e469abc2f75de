"""sfm_node's parameter table: valid defaults, ranges in descriptors, invalid values rejected with reasons."""
import pytest

from dro_depth.ros.params import (DYNAMIC_PARAMETERS, PARAMETER_NAMES, PARAMETERS, ParameterError, defaults,
                                  estimator_config, spec, validate, validate_all)


def test_defaults_are_valid_and_match_the_estimator():
    validate_all(defaults())
    from dro_depth.sfm.estimator import EstimatorConfig
    cfg = estimator_config({**defaults(), 'metric.enabled': False})
    cfg.validate()
    ref = EstimatorConfig()
    for name in ('width', 'height', 'iterations', 'num_refs', 'keyframe_baseline_ratio',
                 'keyframe_rotation_deg', 'keyframe_max_interval', 'static_baseline_ratio', 'max_time_gap',
                 'max_step_ratio', 'max_step_rotation_deg', 'min_depth', 'max_depth', 'device', 'precision'):
        assert getattr(cfg, name) == getattr(ref, name), name
    assert cfg.checkpoint is None           # '' means the bundled default


def test_metric_scaling_opens_the_estimators_depth_limits():
    """With metric.enabled, min/max_depth are metres applied after scaling; the estimator's limits act in
    DRO units and must not cut depth that becomes valid once scaled."""
    values = {**defaults(), 'metric.enabled': True, 'min_depth': 0.5, 'max_depth': 20.0}
    cfg = estimator_config(values)
    cfg.validate()
    assert cfg.min_depth < 1e-3 and cfg.max_depth > 1e4
    from dro_depth.metric.depth_estimator import MetricDepthConfig
    from dro_depth.ros.metric import metric_config
    mcfg = metric_config({**values, 'metric.resolution': '96x128', 'metric.domain': 'indoor'})
    assert isinstance(mcfg, MetricDepthConfig) and mcfg.resolution == (96, 128) and mcfg.domain == 'indoor'
    assert mcfg.checkpoint is None and mcfg.device == values['device']


def test_every_spec_is_documented_and_every_range_contains_its_default():
    for p in PARAMETERS:
        assert p.description, p.name
        if p.low is not None:
            assert p.low <= p.default <= p.high, p.name
    assert {'iterations', 'num_refs', 'metric.domain', 'metric.rate'} <= DYNAMIC_PARAMETERS
    assert 'width' not in DYNAMIC_PARAMETERS and 'publish_tf' not in DYNAMIC_PARAMETERS


@pytest.mark.parametrize('name,value,words', [
    ('iterations', 65, '[0, 64]'),
    ('iterations', -1, '[0, 64]'),
    ('iterations', 2.5, 'type int'),
    ('width', 100, 'multiple of 16'),
    ('height', 16, '[32, 2048]'),
    ('precision', 'fp8', 'one of'),
    ('device', 'gpu0', 'device'),
    ('odom_frame', ' ', 'empty'),
    ('image_qos_reliability', 'sometimes', 'one of'),
    ('camera_info_mode', 'approximate', 'one of'),
    ('max_depth', float('nan'), 'finite'),
    ('publish_tf', 'yes', 'type bool'),
    ('nonsense', 1, 'unknown'),
    ('metric.domain', 'sea', 'one of'),
    ('metric.rate', -1, '[0, 1000]'),
    ('metric.resolution', '100x100', 'multiples of 32'),
    ('metric.resolution', 'big', 'HxW'),
    ('metric.precision', 'int8', 'one of'),
    ('metric.backbone', 'vit', 'one of'),
    ('metric.enabled', 'yes', 'type bool'),
])
def test_invalid_values_are_rejected_with_a_reason(name, value, words):
    reason = validate(name, value)
    assert reason and words in reason


@pytest.mark.parametrize('name,value', [('iterations', 0), ('iterations', 64), ('width', 128),
                                        ('device', 'cuda:1'), ('max_depth', 10), ('precision', 'bf16'),
                                        ('camera_frame', ''), ('metric.resolution', '384x512'),
                                        ('metric.resolution', ''), ('metric.rate', 0)])
def test_valid_values_pass(name, value):
    assert validate(name, value) is None


def test_cross_parameter_rule():
    with pytest.raises(ParameterError, match='min_depth'):
        validate_all({**defaults(), 'min_depth': 5.0, 'max_depth': 4.0})


def test_spec_lookup_names_known_parameters():
    assert spec('iterations').dynamic
    with pytest.raises(KeyError, match='known'):
        spec('iteration')


def test_descriptors_on_a_real_node(ros_env):
    import rclpy
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from dro_depth.ros.params import declare_parameters

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = Node('param_test', context=ctx,
                    parameter_overrides=[Parameter('iterations', value=5), Parameter('width', value=160)])
        values = declare_parameters(node)
        assert values['iterations'] == 5 and values['width'] == 160 and set(values) == PARAMETER_NAMES
        d = node.describe_parameter('iterations')
        r = d.integer_range[0]
        assert (r.from_value, r.to_value, r.step) == (0, 64, 1)
        assert not d.read_only and 'run time' in d.additional_constraints
        d = node.describe_parameter('width')
        assert d.read_only and d.integer_range[0].step == 16
        assert node.describe_parameter('max_depth').floating_point_range[0].to_value == 1e4
        # rclpy enforces the descriptors: out of range and read-only are refused with a reason
        res = node.set_parameters([Parameter('iterations', value=100)])[0]
        assert not res.successful and res.reason
        res = node.set_parameters([Parameter('width', value=128)])[0]
        assert not res.successful and 'read-only' in res.reason.lower()
        res = node.set_parameters([Parameter('iterations', value=3)])[0]
        assert res.successful and node.get_parameter('iterations').value == 3
        node.destroy_node()

        bad = Node('param_test_bad', context=ctx, parameter_overrides=[Parameter('iterations', value=99)])
        with pytest.raises(ParameterError, match='iterations'):
            declare_parameters(bad)
        bad.destroy_node()
        wrong_type = Node('param_test_type', context=ctx,
                          parameter_overrides=[Parameter('width', value='wide')])
        with pytest.raises(ParameterError, match='width'):
            declare_parameters(wrong_type)
        wrong_type.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)


def test_parameter_updates_one_rule_for_every_node():
    """The set-parameters rule the three nodes share: rclpy's own names pass untouched, a read-only name or
    an invalid value refuses the whole change (nothing partially applied), valid ones come back."""
    from collections import namedtuple

    from dro_depth.ros.mono_params import MONO_DYNAMIC, MONO_NAMES, validate_mono
    from dro_depth.ros.params import parameter_updates
    from dro_depth.ros.stereo_params import STEREO_DYNAMIC, STEREO_NAMES, validate_stereo
    P = namedtuple('P', 'name value')
    sfm = (PARAMETER_NAMES, DYNAMIC_PARAMETERS, validate)
    assert parameter_updates([P('use_sim_time', True), P('iterations', 3)], *sfm) == ({'iterations': 3}, '')
    updates, reason = parameter_updates([P('iterations', 3), P('width', 320)], *sfm)
    assert updates == {} and reason == 'width is read-only after start'
    updates, reason = parameter_updates([P('iterations', 3), P('num_refs', 0)], *sfm)
    assert updates == {} and 'num_refs' in reason
    assert parameter_updates([P('max_depth', 5.0)], MONO_NAMES, MONO_DYNAMIC, validate_mono) == \
        ({'max_depth': 5.0}, '')
    assert parameter_updates([P('max_width', 64)], STEREO_NAMES, STEREO_DYNAMIC, validate_stereo)[1] == \
        'max_width is read-only after start'
    assert parameter_updates([P('iterations', 100)], STEREO_NAMES, STEREO_DYNAMIC, validate_stereo)[1]
