"""The bundled light metric model: present, loadable by the node's code path, and useful on unseen scenes."""
import numpy as np
import pytest

from dro_depth.data.synthetic import generate_sequence
from dro_depth.metric.depth_estimator import MetricDepthConfig, MetricDepthEstimator
from dro_depth.weights import default_metric_checkpoint


@pytest.fixture
def metric():                    # a new estimator per scene: its route starts fresh
    path = default_metric_checkpoint()
    assert path is not None, 'dro_depth/weights/metric_default.safetensors is missing'
    assert path.stat().st_size < 40e6
    return MetricDepthEstimator(MetricDepthConfig(device='cpu'))


@pytest.mark.parametrize('kind', ['indoor', 'outdoor'])
def test_default_metric_model_on_an_unseen_scene(metric, kind):
    assert (metric.backbone == 'light' and metric.variant == 'NK'
            and metric.checkpoint == default_metric_checkpoint())
    seq = generate_sequence(kind, seed=1003, n_frames=2, height=240, width=320)   # never trained on
    pred = metric.predict(seq.images[0])
    gt = seq.depths[0]
    ok = np.isfinite(gt) & (gt < (10 if kind == 'indoor' else 80)) & np.isfinite(pred.depth)
    abs_rel = float(np.mean(np.abs(pred.depth[ok] - gt[ok]) / gt[ok]))
    scale = float(np.median(pred.depth[ok] / gt[ok]))
    assert pred.route == kind, (pred.route, pred.p_outdoor)
    assert abs_rel < 0.4 and 0.7 < scale < 1.4, (abs_rel, scale)
