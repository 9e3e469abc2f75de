"""compile_dro / compile_module: OpenVINO graphs equal the torch reference; missing backends fall back
with a reason; the engine cache is keyed, verified and rebuilt when corrupt."""
import logging

import pytest
import torch

from dro_depth.backends import BackendError, compile_dro, compile_module, resolve_backend
from dro_depth.models.dro import load_dro
from dro_depth.weights import default_dro_checkpoint

pytest.importorskip('openvino', reason='openvino is a requirement of the backends')


@pytest.fixture(scope='module')
def dro():
    torch.manual_seed(0)
    return load_dro(str(default_dro_checkpoint()))


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp('engines')


def _inputs(h, w, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[[0.8 * w, 0.0, w / 2 - 0.3], [0.0, 0.8 * w, h / 2 + 0.2], [0.0, 0.0, 1.0]]])
    return torch.rand(1, 3, h, w, generator=g), torch.rand(1, n, 3, h, w, generator=g), K


def _max_rel(a, b):
    return float(((a - b).abs() / b.abs().clamp(min=1e-3)).max())


def _median_rel(a, b):
    return float(((a - b).abs() / b.abs().clamp(min=1e-3)).median())


# Two sizes, 1 and 2 references, 0 / 4 / 7 iterations (each value at least once; exports take seconds).
@pytest.mark.parametrize('h,w,n,it', [(32, 48, 1, 0), (32, 48, 2, 4), (48, 32, 1, 7)])
def test_openvino_fp32_equals_torch(dro, cache, h, w, n, it):
    target, refs, K = _inputs(h, w, n)
    with torch.inference_mode():
        ref = dro(target, refs, K, iterations=it)
    run = compile_dro(dro, backend='openvino', precision='fp32', height=h, width=w, num_refs=n, iterations=it,
                      cache_dir=cache, strict=True)
    assert run.info.backend == 'openvino' and not run.info.fallback_reason
    out = run(target, refs, K)
    assert out.inv_depth.shape == (1, 1, h, w) and out.poses.shape == (1, n, 6)
    assert _max_rel(out.inv_depth, ref.inv_depth) <= 1e-4
    assert float((out.poses - ref.poses).abs().max()) <= 1e-4 * max(1.0, float(ref.poses.abs().max()))
    if it == 0:
        assert out.confidence is None
    else:
        assert float((out.confidence - ref.confidence).abs().max()) <= 1e-4
    # other inputs than the example ones: the graph is not specialised to its export inputs
    target2, refs2, K2 = _inputs(h, w, n, seed=5)
    K2[:, 0, 0] *= 1.3
    with torch.inference_mode():
        ref2 = dro(target2, refs2, K2, iterations=it)
    assert _max_rel(run(target2, refs2, K2).inv_depth, ref2.inv_depth) <= 1e-4


def test_openvino_bf16_within_tolerance(dro, cache):
    target, refs, K = _inputs(32, 48, 2)
    with torch.inference_mode():
        ref = dro(target, refs, K, iterations=4)
    run = compile_dro(dro, backend='openvino', precision='bf16', height=32, width=48, num_refs=2,
                      iterations=4, cache_dir=cache, strict=True)
    out = run(target, refs, K)
    assert run.info.precision == 'bf16'
    assert _median_rel(out.inv_depth, ref.inv_depth) <= 1e-2
    assert _median_rel(out.poses, ref.poses) <= 1e-2
    assert float((out.inv_depth - ref.inv_depth).abs().max()) > 0      # really ran in bf16


def test_cache_hit_and_corrupt_entry_rebuilt(dro, cache):
    # the cheapest graph (0 iterations); compiled into ``cache`` above when the tests run in order
    args = dict(backend='openvino', precision='fp32', height=32, width=48, num_refs=1, iterations=0,
                cache_dir=cache, strict=True)
    compile_dro(dro, **args)
    hit = compile_dro(dro, **args)
    assert hit.info.cache == 'hit'
    for onnx in cache.glob('*/model.onnx'):
        onnx.write_bytes(onnx.read_bytes()[:1000])          # truncated: the hash no longer matches
    rebuilt = compile_dro(dro, **args)
    assert rebuilt.info.cache == 'rebuilt'
    target, refs, K = _inputs(32, 48, 1)
    with torch.inference_mode():
        ref = dro(target, refs, K, iterations=0)
    assert _max_rel(rebuilt(target, refs, K).inv_depth, ref.inv_depth) <= 1e-4


def test_tensorrt_on_cpu_falls_back_with_reason(dro, caplog):
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA; the fallback is for machines without TensorRT / GPU')
    with caplog.at_level(logging.WARNING):
        run = compile_dro(dro, backend='tensorrt', precision='fp16', height=32, width=48, num_refs=1,
                          iterations=2)
    assert run.info.backend == 'torch' and run.info.requested == 'tensorrt'
    assert 'NVIDIA' in run.info.fallback_reason or 'tensorrt' in run.info.fallback_reason
    warns = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warns) == 1 and 'falling back to torch' in warns[0].getMessage()
    target, refs, K = _inputs(32, 48, 1)
    with torch.inference_mode():
        ref = dro(target, refs, K, iterations=2)
    assert torch.equal(run(target, refs, K).inv_depth, ref.inv_depth)
    with pytest.raises(BackendError, match='NVIDIA|tensorrt'):
        compile_dro(dro, backend='tensorrt', precision='fp16', height=32, width=48, num_refs=1, iterations=2,
                    strict=True)


def test_auto_never_picks_tensorrt_without_gpu():
    assert resolve_backend('auto', torch.device('cpu')) == 'openvino'
    with pytest.raises(BackendError, match='backend must be one of'):
        resolve_backend('onnxruntime', torch.device('cpu'))


def test_bad_settings_are_named(dro):
    with pytest.raises(BackendError, match="precision 'fp16' is not available with backend 'openvino'"):
        compile_dro(dro, backend='openvino', precision='fp16', height=32, width=48, num_refs=1, iterations=1)
    with pytest.raises(ValueError, match='height must be a positive multiple of 16'):
        compile_dro(dro, backend='torch', height=30, width=48, num_refs=1, iterations=1)
    run = compile_dro(dro, backend='torch', height=32, width=48, num_refs=1, iterations=1)
    with pytest.raises(ValueError, match=r'takes target \[1,3,32,48\]'):
        run(*_inputs(48, 48, 1))


def test_compile_module_nested_outputs():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()).eval()

    def call(x):
        y = net(x)
        return {'a': y, 'b': [y.mean(dim=1), y[:, :1]]}
    x = torch.rand(1, 3, 16, 16)
    run = compile_module(net, (x,), backend='openvino', call=call, strict=True, name='tiny')
    out = run(x)
    ref = call(x)
    assert set(out) == {'a', 'b'} and len(out['b']) == 2
    assert torch.allclose(out['b'][0], ref['b'][0], atol=1e-5)
    with pytest.raises(BackendError, match='compiled for input shapes'):
        run(torch.rand(1, 3, 16, 32))


def test_light_metric_openvino_fp32_equals_torch(tmp_path):
    from dro_depth.metric.compiled_model import CompiledMetricModel
    from dro_depth.metric.routing import RouteHysteresis
    from dro_depth.models.metric.light import load_light_zoedepth
    from dro_depth.weights import default_metric_checkpoint

    model, _ = load_light_zoedepth(default_metric_checkpoint(), img_size=(64, 96))
    image = torch.rand(1, 3, 72, 100, generator=torch.Generator().manual_seed(3))
    routes = [RouteHysteresis('auto'), RouteHysteresis('auto')]

    def chooser(r):
        return lambda p: [r.update((p[0] / p[0].sum()).double().numpy())]
    with torch.inference_mode():
        ref = model.infer(image, chooser(routes[0]), pad_input=True)
    compiled = CompiledMetricModel(model, backend='openvino', precision='fp32', wait=True, cache_dir=tmp_path)
    depth, head = compiled.infer(image, chooser(routes[1]), guess=ref.route[0], pad_input=True)
    assert compiled.info.backend == 'openvino' and compiled.serving == 'openvino fp32'
    assert head == ref.route[0] and routes[0].route == routes[1].route
    assert depth.shape == ref.metric_depth.shape == (1, 1, 72, 100)
    assert _max_rel(depth, ref.metric_depth) <= 1e-4
