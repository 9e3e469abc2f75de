"""torchrun data-parallel DRO training on CPU (gloo): 2 processes stay in sync, one writer, resumable."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors import safe_open

TINY = {
    'mode': 'supervised', 'steps': 3, 'batch_size': 1, 'iterations': 2, 'height': 32, 'width': 48,
    'hidden': 64, 'device': 'cpu', 'threads': 1, 'log_every': 1, 'ckpt_every': 2,
    'data': {'source': 'synthetic', 'kinds': ['indoor'], 'seeds': [100], 'frames_per_sequence': 8,
             'render_height': 32, 'render_width': 48, 'ref_offsets': [-1]},
}


def _torchrun(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    torchrun = shutil.which('torchrun', path=str(Path(sys.executable).parent)) or 'torchrun'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = [torchrun, '--standalone', '--nproc-per-node', '2', '-m', 'dro_depth.cli', 'train',
           '--config', str(config), '--out', str(out), '--no-progress', *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def _step(path: Path) -> int:
    with safe_open(str(path), 'pt') as f:
        return int(json.loads(f.metadata()['step']))


@pytest.mark.skipif(sys.platform != 'linux', reason='gloo rendezvous over loopback')
def test_two_cpu_ranks_stay_in_sync_and_resume(tmp_path):
    config = tmp_path / 'tiny.yaml'
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / 'run'
    first = _torchrun(config, out)
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-3000:]
    assert log.count('ranks in sync') == 2, log[-3000:]          # both ranks compared their checksums
    assert log.count('rank 1 of 2') == 1 and log.count('rank 0 of 2') == 1
    assert _step(out / 'last.safetensors') == 3 and (out / 'final.safetensors').is_file()
    rows = (out / 'losses.csv').read_text().strip().splitlines()
    assert len(rows) == 1 + 3                                     # one writer: no duplicated rows

    again = _torchrun(config, out, '--resume', '--steps', '4')
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    assert 'resumed at step 3' in log and log.count('ranks in sync') == 2
    assert _step(out / 'last.safetensors') == 4
    assert len((out / 'losses.csv').read_text().strip().splitlines()) == 1 + 4
