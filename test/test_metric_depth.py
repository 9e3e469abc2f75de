"""MetricDepthEstimator: loading light and BEiT (released-format) files, prediction, routing with hysteresis,
precision and bad input. Small random-weight models keep it fast; accuracy is measured by metric_eval."""
import numpy as np
import pytest
import torch

from dro_depth.metric.depth_estimator import (MetricDepthConfig, MetricDepthEstimator, MetricInputError,
                                              parse_resolution)
from dro_depth.models.checkpoints import CheckpointError
from dro_depth.models.metric import BeitDPTConfig, build_zoedepth
from dro_depth.models.metric.light import build_light_zoedepth, load_light_zoedepth, save_light_zoedepth


@pytest.fixture(scope='module')
def light_nk(tmp_path_factory):
    torch.manual_seed(0)
    model = build_light_zoedepth('NK', width=16, img_size=(64, 96), output_stride=2)
    path = tmp_path_factory.mktemp('light') / 'nk.safetensors'
    save_light_zoedepth(model.eval(), path, metadata={'trained_on': 'nothing (test)'})
    return path, model


@pytest.fixture(scope='module')
def beit_n(tmp_path_factory):
    torch.manual_seed(1)
    cfg = BeitDPTConfig(embed_dim=32, depth=4, num_heads=2, hooks=(0, 1, 2, 3),
                        reassemble_channels=(8, 8, 8, 8), features=16)
    model = build_zoedepth('N', cfg, img_size=(64, 96)).eval()
    path = tmp_path_factory.mktemp('beit') / 'ZoeD_mini_N.pt'
    torch.save({'model': model.state_dict()}, path)          # the released files' layout
    return path, model


def _image(h=48, w=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_parse_resolution():
    assert parse_resolution('') is None and parse_resolution('192x256') == (192, 256)
    assert parse_resolution(' 384 X 512 ') == (384, 512)
    for bad in ('192', '190x256', '0x64', 'axb', '64x8192'):
        with pytest.raises(ValueError):
            parse_resolution(bad)


def test_light_file_roundtrip_is_exact(light_nk):
    path, model = light_nk
    loaded, meta = load_light_zoedepth(path)
    assert meta['variant'] == 'NK' and meta['width'] == 16 and meta['trained_on'] == 'nothing (test)'
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        a, b = model(x, 'indoor').metric_depth, loaded(x, 'indoor').metric_depth
    torch.testing.assert_close(a, b)


def test_predict_light(light_nk):
    path, model = light_nk
    est = MetricDepthEstimator(MetricDepthConfig(checkpoint=str(path), device='cpu'))
    assert est.backbone == 'light' and est.multi_head and est.variant == 'NK'
    img = _image()
    pred = est.predict(img)
    assert pred.depth.shape == img.shape[:2] and pred.depth.dtype == np.float32
    assert np.all(pred.depth[np.isfinite(pred.depth)] > 0) and np.isfinite(pred.depth).mean() > 0.99
    assert pred.route in ('indoor', 'outdoor') and 0 <= pred.p_outdoor <= 1 and pred.latency_ms > 0
    # equals the model's own infer() with that head (the estimator adds routing, not maths)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    ref = model.infer(x, pred.route, pad_input=False).metric_depth[0, 0].numpy()   # light: trained unpadded
    assert est.pad_input is False
    np.testing.assert_allclose(pred.depth, ref, rtol=1e-5)
    # float images in [0, 1] give the same answer as uint8
    np.testing.assert_allclose(est.predict(img.astype(np.float32) / 255).depth, pred.depth, rtol=1e-5)
    d = est.diagnostics()
    assert (d['metric_backbone'] == 'light' and d['route'] == pred.route
            and d['metric_network_size'] == '64x96')


def test_forced_domain_and_resolution(light_nk):
    path, model = light_nk
    est = MetricDepthEstimator(MetricDepthConfig(checkpoint=str(path), device='cpu', domain='outdoor',
                                                 resolution=(32, 64)))
    assert est.model.img_size == (32, 64)
    for seed in range(3):
        assert est.predict(_image(seed=seed)).route == 'outdoor'
    est.domain = 'indoor'
    assert est.predict(_image()).route == 'indoor'
    with pytest.raises(ValueError):
        est.domain = 'underwater'


def test_route_has_hysteresis(light_nk):
    """Router probabilities that flip every frame must not flip the head; a sustained change does."""
    path, _ = light_nk
    est = MetricDepthEstimator(MetricDepthConfig(checkpoint=str(path), device='cpu', route_min_consecutive=3))
    head = est.model
    flips = iter([0.8, 0.3, 0.8, 0.3, 0.8, 0.3] + [0.05] * 10)
    original = head.mlp_classifier.forward

    def fake_router(token):          # steer the router's output, keep the rest of the model real
        p = next(flips)
        return torch.log(torch.tensor([[1 - p, p]], dtype=token.dtype)).expand(token.shape[0], 2)

    head.mlp_classifier.forward = fake_router
    try:
        routes = [est.predict(_image()).route for _ in range(16)]
    finally:
        head.mlp_classifier.forward = original
    assert len(set(routes[:6])) == 1 and routes[0] == 'outdoor', routes
    assert routes[-1] == 'indoor' and est.routing.switch_count == 1, routes


def test_beit_released_layout(beit_n):
    path, model = beit_n
    est = MetricDepthEstimator(MetricDepthConfig(checkpoint=str(path), device='cpu', resolution=(64, 96)))
    assert est.backbone == 'beit' and not est.multi_head and est.variant == 'N'
    img = _image()
    pred = est.predict(img)
    assert pred.route == 'indoor' and np.isnan(pred.p_outdoor)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    np.testing.assert_allclose(pred.depth, model.infer(x).metric_depth[0, 0].numpy(), rtol=1e-4, atol=1e-6)
    assert est.pad_input is True                          # released models: the official padded infer()
    with pytest.raises(CheckpointError, match='beit'):
        MetricDepthEstimator(MetricDepthConfig(checkpoint=str(path), device='cpu', backbone='light'))


def test_bf16_core_is_close_to_fp32(light_nk):
    path, _ = light_nk
    img = _image()
    ref = MetricDepthEstimator(MetricDepthConfig(checkpoint=str(path), device='cpu', domain='indoor'))
    bf = MetricDepthEstimator(MetricDepthConfig(checkpoint=str(path), device='cpu', domain='indoor',
                                                precision='bf16'))
    assert next(bf.model.core.parameters()).dtype == torch.bfloat16
    assert bf.model.conv2.weight.dtype == torch.float32            # the head stays fp32
    a, b = ref.predict(img).depth, bf.predict(img).depth
    rel = np.nanmedian(np.abs(a - b) / a)
    assert rel < 0.05, rel


def test_bad_settings_and_files(tmp_path, light_nk):
    with pytest.raises(FileNotFoundError, match='not found'):
        MetricDepthEstimator(MetricDepthConfig(checkpoint=str(tmp_path / 'none.safetensors'), device='cpu'))
    with pytest.raises(ValueError, match='fp16'):
        MetricDepthEstimator(MetricDepthConfig(checkpoint=str(light_nk[0]), device='cpu', precision='fp16'))
    with pytest.raises(ValueError, match='backbone'):
        MetricDepthConfig(backbone='vit')
    with pytest.raises(ValueError, match='domain'):
        MetricDepthConfig(domain='sea')
    junk = tmp_path / 'junk.pt'
    junk.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError):
        MetricDepthEstimator(MetricDepthConfig(checkpoint=str(junk), device='cpu'))
    from dro_depth.models.dro import build_dro, save_dro
    dro_file = save_dro(build_dro(), tmp_path / 'dro.safetensors')
    with pytest.raises(CheckpointError):                    # a DRO model is not a metric model
        MetricDepthEstimator(MetricDepthConfig(checkpoint=str(dro_file), device='cpu'))


def test_bad_images_are_rejected_clearly(light_nk):
    est = MetricDepthEstimator(MetricDepthConfig(checkpoint=str(light_nk[0]), device='cpu'))
    for bad, words in [(np.zeros((48, 80), np.uint8), 'RGB'), (np.zeros((48, 80, 4), np.uint8), 'RGB'),
                       (np.zeros((4, 4, 3), np.uint8), 'too small'),
                       (np.zeros((48, 80, 3), np.int32), 'dtype'),
                       (np.full((48, 80, 3), np.nan, np.float32), 'NaN'), ('image', 'RGB')]:
        with pytest.raises(MetricInputError, match=words):
            est.predict(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_fp16(light_nk):
    est = MetricDepthEstimator(MetricDepthConfig(checkpoint=str(light_nk[0]), device='cuda', precision='fp16',
                                                 domain='indoor'))
    ref = MetricDepthEstimator(MetricDepthConfig(checkpoint=str(light_nk[0]), device='cpu', domain='indoor'))
    img = _image()
    a, b = ref.predict(img).depth, est.predict(img).depth
    assert np.nanmedian(np.abs(a - b) / a) < 0.05
