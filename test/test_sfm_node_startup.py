"""Start-up errors of the installed sfm_node: a bad metric setting ends it with exit code 2 and a reason."""
import signal
import sys
from pathlib import Path

import pytest

pytest.importorskip('rclpy', reason='the ROS 2 runtime (rclpy) is not installed')


@pytest.mark.parametrize('params,words', [
    ({'metric.checkpoint': '/nonexistent/ZoeD_M12_NK.pt'}, 'metric checkpoint not found'),
    ({'metric.precision': 'fp16', 'device': 'cpu'}, 'fp16 needs a CUDA device'),
    ({'metric.resolution': '100x100'}, 'multiples of 32'),
])
def test_bad_metric_settings_end_the_node_with_a_reason(ros_env, tmp_path, params, words):
    """A bad metric setting is a start-up error: exit code 2 and a FATAL line that says what is wrong."""
    from dro_depth.ros.testing.process import NodeProcess

    exe = Path(sys.prefix) / 'lib' / 'dro_depth' / 'sfm_node'
    proc = NodeProcess({'device': 'cpu', 'cpu_threads': 1, **params}, command=[sys.executable, str(exe)],
                       env=ros_env, workdir=tmp_path).start()
    try:
        code = proc.proc.wait(120)
    finally:
        proc.stop(signal.SIGKILL)
    assert code == 2, proc.log()[-3000:]
    assert words in proc.log(), proc.log()[-3000:]


@pytest.mark.skipif(not Path('/dev/shm').is_dir(), reason='needs POSIX shared memory in /dev/shm')
def test_a_clean_exit_leaves_no_dds_shared_memory_behind(ros_env, tmp_path):
    """Fast DDS removes a participant's shared-memory segment (/dev/shm/fastdds_*, 32 MiB with the shipped
    profile) only when the process shuts down cleanly; the tests that once SIGKILLed a healthy node left
    about 70 MB of RAM in /dev/shm per test run."""
    from dro_depth.ros.testing.client import SfmClient
    from dro_depth.ros.testing.process import NodeProcess

    def segments():
        return {p.name for p in Path('/dev/shm').glob('fastdds_*')}

    client = SfmClient(topics=['depth'])
    try:
        before = segments()
        proc = NodeProcess({'device': 'cpu', 'cpu_threads': 1, 'metric.enabled': False},
                           command=[sys.executable, str(Path(sys.prefix) / 'lib' / 'dro_depth' / 'sfm_node')],
                           env=ros_env, workdir=tmp_path).start()
        try:
            assert client.wait_for_node(60), proc.log()[-3000:]
            assert segments() - before, 'the node made no shared-memory segment: nothing to check'
        finally:
            code = proc.stop(signal.SIGINT, 30)
    finally:
        client.close()
    assert code == 0, proc.log()[-3000:]
    assert not (segments() - before), sorted(segments() - before)
