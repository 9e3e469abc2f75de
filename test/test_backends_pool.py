"""DROEnginePool: misses compile in the background while torch / the previous engine serves; a backend
that is not installed falls back once with a reason; ``dro-depth export`` writes an artefact and its JSON."""
import json
import logging
import time

import pytest
import torch

from dro_depth.backends import DROEnginePool
from dro_depth.models.dro import load_dro
from dro_depth.weights import default_dro_checkpoint

pytest.importorskip('openvino', reason='openvino is a requirement of the backends')


@pytest.fixture(scope='module')
def dro():
    return load_dro(str(default_dro_checkpoint()))


def _wait_ready(pool, n, it, timeout=120.0):
    t0 = time.monotonic()
    while not pool.ready(n, it):
        assert time.monotonic() - t0 < timeout, pool.diagnostics()
        time.sleep(0.05)


def test_iterations_change_keeps_old_engine_serving(dro):
    pool = DROEnginePool(dro, backend='openvino', precision='fp32', height=32, width=32,
                         device=torch.device('cpu'), threads=1)
    engine, it = pool.get(1, 1)
    assert engine is None and it == 1                 # nothing compiled yet: torch at the asked count
    _wait_ready(pool, 1, 1)
    engine, it = pool.get(1, 1)
    assert engine is not None and engine.iterations == 1
    assert pool.diagnostics()['dro_engine'] == 'openvino fp32'
    engine, it = pool.get(1, 2)                       # run-time change: the old engine answers meanwhile
    assert engine is not None and engine.iterations == 1 and it == 1
    _wait_ready(pool, 1, 2)
    engine, it = pool.get(1, 2)
    assert engine.iterations == 2 and it == 2
    d = pool.diagnostics()
    assert d['dro_engines_ready'] == '1x1,1x2' and '1x2:' in d['dro_compile_s']


def test_missing_backend_falls_back_once(dro, caplog):
    if torch.cuda.is_available():
        pytest.skip('CUDA machine')
    with caplog.at_level(logging.WARNING):
        pool = DROEnginePool(dro, backend='tensorrt', precision='fp16', height=32, width=32,
                             device=torch.device('cpu'))
        pool.prepare(2, 4)
        assert pool.get(2, 4) == (None, 4)
    assert pool.backend == 'torch' and not pool.compiles
    assert 'tensorrt' in pool.diagnostics()['dro_backend_fallback']
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_export_command_writes_artefact_and_inputs(tmp_path):
    from dro_depth.backends.export_command import main

    assert main(['--model', 'dro', '--format', 'openvino', '--size', '32x32', '--refs', '1', '--iterations',
                 '0', '--out', str(tmp_path / 'dro')]) == 0
    meta = json.loads((tmp_path / 'dro.json').read_text())
    assert meta['files'] == ['dro.xml', 'dro.bin'] and (tmp_path / 'dro.bin').stat().st_size > 1e6
    assert [i['shape'] for i in meta['inputs']] == [[1, 3, 32, 32], [1, 1, 3, 32, 32], [1, 3, 3]]
    import openvino as ov
    compiled = ov.Core().compile_model(str(tmp_path / 'dro.xml'), 'CPU')
    assert len(compiled.outputs) == 2
    assert main(['--format', 'tensorrt', '--size', '32x32', '--out', str(tmp_path / 'x')]) == (
        0 if torch.cuda.is_available() else 2)


def test_estimators_fall_back_from_tensorrt_on_cpu(caplog):
    if torch.cuda.is_available():
        pytest.skip('CUDA machine')
    import numpy as np

    from dro_depth.metric.depth_estimator import MetricDepthConfig, MetricDepthEstimator
    from dro_depth.sfm.estimator import EstimatorConfig, SfmEstimator

    with caplog.at_level(logging.WARNING):
        est = SfmEstimator(EstimatorConfig(backend='tensorrt', precision='fp16'))
        metric = MetricDepthEstimator(MetricDepthConfig(backend='tensorrt'))
    d = est.diagnostics()
    assert d['dro_backend'] == 'torch' and 'NVIDIA' in d['dro_backend_fallback']
    assert metric.diagnostics()['metric_engine'] == 'torch'
    assert 'tensorrt' in metric.diagnostics()['metric_backend_fallback']
    warns = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum('falls back to torch' in w for w in warns) == 2
    K = np.array([[100.0, 0, 64], [0, 100.0, 48], [0, 0, 1]])
    result = est.track(np.zeros((96, 128, 3), np.uint8) + 100, K, 0.0)
    assert result.depth.shape == (96, 128)
    with pytest.raises(ValueError, match='backend must be one of'):
        EstimatorConfig(backend='onnx').validate()
