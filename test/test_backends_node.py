"""The INSTALLED sfm_node with backend:=openvino: the compiled engine takes over from torch while the node
streams, /diagnostics names the engine and its compile time, and depth keeps flowing."""
import signal
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')
pytest.importorskip('openvino', reason='openvino is a requirement of the backends')

PARAMS = {'device': 'cpu', 'width': 64, 'height': 48, 'iterations': 1, 'num_refs': 1, 'backend': 'openvino',
          'precision': 'fp32', 'backend_threads': 1, 'diagnostics_period': 0.25, 'metric.enabled': False}


def test_node_runs_with_openvino(ros_env, tmp_path):
    from dro_depth.data.synthetic import generate_sequence
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.testing.process import NodeProcess

    exe = Path(sys.prefix) / 'lib' / 'dro_depth' / 'sfm_node'
    if not exe.is_file():
        pytest.fail(f'{exe} is missing: run `make install` before the tests')
    seq = generate_sequence('indoor', seed=3, n_frames=20, height=96, width=128)
    proc = NodeProcess({**PARAMS, 'engine_cache': str(tmp_path / 'engines')},
                       command=[sys.executable, str(exe)], env=ros_env).start()
    client = SfmClient()
    try:
        assert client.wait_for_node(120), proc.log()[-3000:]
        i, deadline = 0, time.monotonic() + 120
        served = {}
        while time.monotonic() < deadline:            # stream until the engine serves and depth follows
            client.camera.publish(seq.images[i % 20], seq.K, time.time_ns(), 'cam')
            i += 1
            client.outputs.wait(lambda o: False, 0.1)
            d = client.diagnostics()
            if d.get('dro_engine') == 'openvino fp32' and not served:
                served = {'depth': client.outputs.count('depth'), 'diag': dict(d)}
            if served and client.outputs.count('depth') >= served['depth'] + 3:
                break
        assert served, f'the OpenVINO engine never served: {client.diagnostics()}\n{proc.log()[-2000:]}'
        assert client.outputs.count('depth') >= served['depth'] + 3
        d = served['diag']
        assert d['dro_backend'] == 'openvino' and d['dro_backend_requested'] == 'openvino'
        assert '1x1' in d['dro_engines_ready'] and '1x1:' in d['dro_compile_s']
        assert d['dro_backend_fallback'] == ''
        assert list((tmp_path / 'engines').glob('*/manifest.json'))      # the configured cache was used
    finally:
        client.close()
        code = proc.stop(signal.SIGINT, timeout=30)
    assert code == 0, proc.log()[-2000:]
