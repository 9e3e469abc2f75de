"""MonoDepthEstimator: official pre/post-processing around the network, metric vs relative, bf16, errors."""
import numpy as np
import pytest
import torch

from dro_depth.errors import DroDepthError
from dro_depth.models.depth_anything import image_to_tensor, resize_back
from dro_depth.mono import MonoDepthConfig, MonoDepthEstimator
from reference_data import reference_dir

MINI = reference_dir('depth_anything') / 'da2_mini.pt'
pytestmark = pytest.mark.skipif(not MINI.is_file(), reason=f'reference file missing: {MINI}')


@pytest.fixture(scope='module')
def sd():
    return torch.load(MINI, weights_only=True)['state_dict']


def _est(sd, metric, **kw):
    cfg = MonoDepthConfig(checkpoint=sd, metric=metric, max_depth=20.0, depth=4, hooks=(0, 1, 2, 3),
                          input_size=140, device='cpu', **kw)
    return MonoDepthEstimator(cfg)


def _image(h=75, w=100, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_metric_output_matches_manual_pipeline(sd):
    est = _est(sd, True)
    img = _image()
    pred = est.predict(img)
    assert pred.relative is None and pred.depth.shape == (75, 100) and pred.depth.dtype == np.float32
    assert pred.network_size == (140, 182)
    with torch.no_grad():
        ref = resize_back(est.model(image_to_tensor(img, 140)), 75, 100)[0].numpy()
    np.testing.assert_allclose(pred.depth, ref, rtol=0, atol=1e-5)
    assert np.all((pred.depth > 0) & (pred.depth < 20.0))


def test_relative_and_bf16(sd):
    img = _image(120, 90, seed=1)
    fp32 = _est(sd, False).predict(img)
    bf16 = _est(sd, False, precision='bf16').predict(img)
    assert fp32.depth is None and fp32.relative.shape == (120, 90) and (fp32.relative >= 0).all()
    assert bf16.relative.dtype == np.float32
    err = np.abs(bf16.relative - fp32.relative).max() / np.abs(fp32.relative).max()
    assert 0 < err < 0.1


def test_bad_input_and_config(sd):
    est = _est(sd, True)
    with pytest.raises(DroDepthError, match='too small'):
        est.predict(_image(10, 100))
    with pytest.raises(DroDepthError, match='uint8'):
        est.predict(np.zeros((20, 20, 3), np.float32))
    with pytest.raises(DroDepthError, match='uint8'):
        est.predict(np.zeros((20, 20), np.uint8))
    with pytest.raises(DroDepthError, match='checkpoint'):
        MonoDepthConfig()
    with pytest.raises(DroDepthError, match='precision'):
        MonoDepthConfig(checkpoint='x', precision='fp8')


def test_encoder_mismatch_is_a_checkpoint_error(sd):
    from dro_depth.models.checkpoints import CheckpointError
    with pytest.raises(CheckpointError, match='encoder mismatch'):
        MonoDepthEstimator(MonoDepthConfig(checkpoint=sd, encoder='vitl', depth=4, hooks=(0, 1, 2, 3),
                                           device='cpu'))


def test_any_aspect_is_accepted(sd):
    est = _est(sd, True)
    for h, w in [(14, 40), (40, 14), (37, 41)]:
        assert est.predict(_image(h, w)).depth.shape == (h, w)
