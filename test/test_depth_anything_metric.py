"""Depth Anything V2 as the metric source: routed indoor (20 m) / outdoor (80 m) checkpoints, only the chosen
one running, held-out routing accuracy of the light NK router, relative checkpoints refused."""
import numpy as np
import pytest
import torch

from dro_depth.data.synthetic import generate_sequence
from dro_depth.errors import ConfigError
from dro_depth.metric.depth_anything_metric import DepthAnythingMetricConfig, DepthAnythingMetricEstimator
from dro_depth.metric.domain_router import DomainRouter
from dro_depth.weights import default_metric_checkpoint
from reference_data import reference_dir

MINI = reference_dir('depth_anything') / 'da2_mini.pt'
pytestmark = pytest.mark.skipif(not MINI.is_file() or default_metric_checkpoint() is None,
                                reason='needs da2_mini.pt and the bundled light NK model')


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    sd = torch.load(MINI, weights_only=True)['state_dict']
    d = tmp_path_factory.mktemp('da')
    paths = {}
    for route, name in (('indoor', 'hypersim'), ('outdoor', 'vkitti')):
        paths[route] = d / f'depth_anything_v2_metric_{name}_vits.pth'
        torch.save(sd, paths[route])
    paths['relative'] = d / 'depth_anything_v2_vits.pth'
    torch.save(sd, paths['relative'])
    return paths


def _frames(kind, seed, n):
    return list(generate_sequence(kind, seed=seed, n_frames=n, height=120, width=160).images)


@pytest.mark.slow
def test_router_heldout_accuracy():
    """Held-out synthetic seeds (training used 100-139): the routing signal is measured, >= 0.95."""
    router = DomainRouter()
    hits = []
    for seed in (1000, 1001, 1002):
        for kind, label in (('indoor', 0), ('outdoor', 1)):
            for img in _frames(kind, seed, 3):
                hits.append(int(np.argmax(router.probabilities(img))) == label)
    assert np.mean(hits) >= 0.95


def test_routes_per_frame_and_runs_only_the_chosen_model(files):
    est = DepthAnythingMetricEstimator(DepthAnythingMetricConfig(
        indoor=str(files['indoor']), outdoor=str(files['outdoor']), input_size=70, device='cpu',
        depth=4, hooks=(0, 1, 2, 3), route_min_consecutive=2, route_smoothing=1.0))
    indoor = _frames('indoor', 1003, 2)
    outdoor = _frames('outdoor', 1003, 3)
    preds = [est.predict(img) for img in indoor + outdoor]
    assert [p.route for p in preds] == ['indoor', 'indoor', 'indoor', 'outdoor', 'outdoor']
    assert est.runs == {'indoor': 3, 'outdoor': 2}
    assert all(np.nanmax(p.depth) < 20.0 for p in preds[:3])
    # same weights in both files: the outdoor checkpoint's metres are exactly 80/20 of the indoor ones
    forced = DepthAnythingMetricEstimator(DepthAnythingMetricConfig(
        indoor=str(files['indoor']), input_size=70, device='cpu', depth=4, hooks=(0, 1, 2, 3)))
    assert forced.router is None
    np.testing.assert_allclose(preds[4].depth, 4.0 * forced.predict(outdoor[2]).depth, rtol=1e-5)
    d = est.diagnostics()
    assert d['metric_backbone'] == 'depth_anything' and d['route'] == 'outdoor' and d['route_switches'] == 1


def test_relative_or_swapped_checkpoints_are_refused(files):
    with pytest.raises(ConfigError, match='relative.*metric scale'):
        DepthAnythingMetricConfig(indoor=str(files['relative']))
    with pytest.raises(ConfigError, match='outdoor checkpoint but is configured as indoor'):
        DepthAnythingMetricConfig(indoor=str(files['outdoor']))
    with pytest.raises(ConfigError, match='needs a metric checkpoint'):
        DepthAnythingMetricConfig()
    with pytest.raises(ConfigError, match='no outdoor checkpoint'):
        DepthAnythingMetricConfig(indoor=str(files['indoor']), domain='outdoor')


def test_node_parameters_build_it_or_refuse_relative(files):
    from dro_depth.ros.metric import build_metric_model
    from dro_depth.ros.params import defaults, validate_all
    values = {**defaults(), 'metric.backbone': 'depth_anything', 'metric.da_indoor': str(files['relative'])}
    validate_all(values)
    with pytest.raises(ConfigError, match='relative'):
        build_metric_model(values)
    values['metric.da_indoor'] = ''
    with pytest.raises(ConfigError, match='needs a metric checkpoint'):
        build_metric_model(values)
    values['metric.da_indoor'] = str(files['indoor'])
    from dro_depth.models.checkpoints import CheckpointError
    with pytest.raises(CheckpointError, match='missing keys'):     # the reduced file is not a released vits
        build_metric_model(values)
