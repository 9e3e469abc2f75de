"""Static checks of launch/sfm.launch.py and config/sfm.yaml against the node's declared parameters.

launch and launch_ros are not installable from PyPI, so the launch file is parsed with ``ast``; the
parameter table comes from dro_depth/ros/params.py, the single source of truth.
"""
import ast
from pathlib import Path

import pytest
import yaml

from dro_depth.ros.params import BUILTIN_PARAMETERS, PARAMETER_NAMES, defaults, validate

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / 'launch' / 'sfm.launch.py'
CONFIG = ROOT / 'config' / 'sfm.yaml'
RVIZ = ROOT / 'rviz' / 'sfm.rviz'


@pytest.fixture(scope='module')
def tree():
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


def _constant(tree, name):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == name for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:          # not a literal (e.g. refers to types): the expression itself
                return node.value
    raise AssertionError(f'{name} is not defined at module level in {LAUNCH.name}')


def _node_calls(tree):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, 'id', None) == 'Node']


def _keyword(call, name):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _resolve(tree, value):
    """A keyword value: a literal, or a module-level constant referred to by name."""
    if isinstance(value, ast.Name):
        return _constant(tree, value.id)
    return ast.literal_eval(value)


def _sfm_node_call(tree):
    calls = [c for c in _node_calls(tree) if _resolve(tree, _keyword(c, 'executable')) == 'sfm_node']
    assert len(calls) == 1, 'exactly one Node(executable=sfm_node) expected'
    return calls[0]


def test_launch_file_imports_launch_only_inside_functions(tree):
    top_imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in top_imports for a in n.names} | {getattr(n, 'module', None) for n in top_imports}
    assert not {'launch', 'launch_ros', 'launch_ros.actions', 'launch.actions'} & names
    assert any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description' for n in tree.body)


def test_node_is_the_installed_sfm_node(tree):
    call = _sfm_node_call(tree)
    assert _resolve(tree, _keyword(call, 'package')) == 'dro_depth'
    assert _resolve(tree, _keyword(call, 'executable')) == 'sfm_node'
    assert ast.literal_eval(_keyword(call, 'name')) == 'sfm_node'
    installed = ROOT / 'scripts' / 'sfm_node'
    assert installed.is_file(), 'scripts/sfm_node is installed to lib/dro_depth/ by setup.py data_files'


def test_remappings_cover_image_and_camera_info(tree):
    call = _sfm_node_call(tree)
    remap = _keyword(call, 'remappings')
    assert isinstance(remap, ast.ListComp) and 'REMAPPINGS' in ast.unparse(remap)
    remappings = _constant(tree, 'REMAPPINGS')
    arguments = _constant(tree, 'ARGUMENTS')
    assert set(remappings) == {'image', 'camera_info'}
    assert all(arg in arguments for arg in remappings.values())


def test_parameter_overrides_are_declared_parameters(tree):
    call = _sfm_node_call(tree)
    params = ast.unparse(_keyword(call, 'parameters'))
    assert 'params_file' in params and 'overrides' in params
    overrides = {}
    for node in ast.walk(tree):
        targets = [getattr(t, 'id', None) for t in getattr(node, 'targets', [])]
        if isinstance(node, ast.Assign) and 'PARAMETER_OVERRIDES' in targets:
            overrides = {ast.literal_eval(k): ast.literal_eval(v.elts[0])
                         for k, v in zip(node.value.keys, node.value.values)}
        # literal keys of the overrides dict built in _launch_setup
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'overrides' for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            for key in node.value.keys:
                assert ast.literal_eval(key) in PARAMETER_NAMES | BUILTIN_PARAMETERS
    assert overrides, 'PARAMETER_OVERRIDES missing'
    assert set(overrides.values()) <= PARAMETER_NAMES
    arguments = _constant(tree, 'ARGUMENTS')
    assert set(overrides) <= set(arguments)


def test_launch_arguments_cover_the_issue(tree):
    arguments = _constant(tree, 'ARGUMENTS')
    assert {'params_file', 'namespace', 'use_sim_time', 'image_topic', 'camera_info_topic', 'checkpoint',
            'device', 'iterations', 'log_level', 'rviz'} <= set(arguments)
    source = LAUNCH.read_text()
    for needle in ('get_package_share_directory(PACKAGE)', "'sfm.yaml'", "'sfm.rviz'"):
        assert needle in source, needle


def _flatten(tree, prefix=''):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f'{prefix}{key}.'))
        else:
            out[f'{prefix}{key}'] = value
    return out


def test_config_keys_are_declared_and_valid():
    data = yaml.safe_load(CONFIG.read_text())
    assert len(data) == 1
    (node_key, body), = data.items()
    assert node_key in ('sfm_node', '/**/sfm_node')
    params = _flatten(body['ros__parameters'])         # nested maps are dotted names (metric.rate)
    assert set(params) <= PARAMETER_NAMES | BUILTIN_PARAMETERS
    assert set(params) == PARAMETER_NAMES, 'config/sfm.yaml should list every parameter'
    for name, value in params.items():
        assert validate(name, value) is None, (name, value, validate(name, value))
        assert value == defaults()[name], f'{name}: config value differs from the declared default'


def test_rviz_config_shows_the_outputs():
    data = yaml.safe_load(RVIZ.read_text())
    displays = data['Visualization Manager']['Displays']
    classes = {d['Class'] for d in displays}
    assert {'rviz_default_plugins/Image', 'rviz_default_plugins/PointCloud2', 'rviz_default_plugins/Path',
            'rviz_default_plugins/TF'} <= classes
    topics = {d['Topic']['Value'] for d in displays if 'Topic' in d}
    assert {'image', 'depth', 'confidence', 'points', 'path', 'odom'} <= topics
    assert data['Visualization Manager']['Global Options']['Fixed Frame'] == 'odom'


# ---------------------------------------------------------------------------------- mono_depth.launch.py
MONO_LAUNCH = ROOT / 'launch' / 'mono_depth.launch.py'
MONO_CONFIG = ROOT / 'config' / 'mono_depth.yaml'


@pytest.fixture(scope='module')
def mono_tree():
    return ast.parse(MONO_LAUNCH.read_text(), filename=str(MONO_LAUNCH))


def test_mono_launch_runs_the_installed_node_with_launch_imported_lazily(mono_tree):
    test_launch_file_imports_launch_only_inside_functions(mono_tree)
    calls = [c for c in _node_calls(mono_tree)
             if _resolve(mono_tree, _keyword(c, 'executable')) == 'mono_depth_node']
    assert len(calls) == 1, 'exactly one Node(executable=mono_depth_node) expected'
    call = calls[0]
    assert _resolve(mono_tree, _keyword(call, 'package')) == 'dro_depth'
    assert ast.literal_eval(_keyword(call, 'name')) == 'mono_depth_node'
    assert (ROOT / 'scripts' / 'mono_depth_node').is_file()
    assert "'mono_depth_node = dro_depth.ros.mono_depth_node:main'" in (ROOT / 'setup.py').read_text()
    assert "'mono_depth.yaml'" in MONO_LAUNCH.read_text()


def test_mono_launch_arguments_remappings_and_overrides_follow_the_table(mono_tree):
    from dro_depth.ros.mono_params import MONO_NAMES, MONO_PARAMETERS
    arguments = _constant(mono_tree, 'ARGUMENTS')
    assert all(description.strip() for _, description in arguments.values())
    assert {'params_file', 'namespace', 'use_sim_time', 'image_topic', 'camera_info_topic', 'checkpoint',
            'kind', 'device', 'log_level'} <= set(arguments)
    remappings = _constant(mono_tree, 'REMAPPINGS')
    assert remappings == {'image': 'image_topic', 'camera_info': 'camera_info_topic'}
    types = {p.name: p.type for p in MONO_PARAMETERS}
    overrides = [n for n in mono_tree.body if isinstance(n, ast.Assign)
                 and any(getattr(t, 'id', None) == 'PARAMETER_OVERRIDES' for t in n.targets)]
    assert len(overrides) == 1
    for key, value in zip(overrides[0].value.keys, overrides[0].value.values):
        argument, (parameter, kind) = ast.literal_eval(key), value.elts
        assert argument in arguments and ast.literal_eval(parameter) in MONO_NAMES
        assert kind.id == types[ast.literal_eval(parameter)].__name__, argument
    for node in ast.walk(mono_tree):
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'overrides' for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            assert {ast.literal_eval(k) for k in node.value.keys} <= MONO_NAMES | BUILTIN_PARAMETERS


def test_mono_config_lists_every_parameter_with_its_default():
    from dro_depth.ros.mono_params import MONO_PARAMETERS, validate_mono, validate_mono_all
    data = yaml.safe_load(MONO_CONFIG.read_text())
    assert list(data) == ['mono_depth_node']
    params = data['mono_depth_node']['ros__parameters']
    assert list(params) == [p.name for p in MONO_PARAMETERS], 'config/mono_depth.yaml lists the table in order'
    for p in MONO_PARAMETERS:
        assert validate_mono(p.name, params[p.name]) is None and params[p.name] == p.default, p.name
    validate_mono_all(params)
