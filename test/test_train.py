"""The training CLI: a few real optimisation steps, resumable checkpoints, loss logs, bad configs."""
import csv

import pytest
import torch
import yaml

from dro_depth.models.dro import load_dro
from dro_depth.training.command import main as train_main
from dro_depth.training.dro import TrainConfig


def _config(tmp_path, **over):
    cfg = {'mode': 'supervised', 'steps': 3, 'batch_size': 1, 'iterations': 1, 'height': 64, 'width': 80,
           'log_every': 1, 'ckpt_every': 2, 'keep_every': 2, 'threads': 1, 'device': 'cpu', 'save_half': True,
           'data': {'source': 'synthetic', 'kinds': ['indoor'], 'seeds': [7], 'frames_per_sequence': 6,
                    'render_height': 60, 'render_width': 80, 'ref_offsets': [-1, 1]}}
    cfg.update(over)
    path = tmp_path / 'cfg.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize('mode', ['supervised', 'self_supervised'])
def test_train_resume_and_outputs(tmp_path, mode):
    out = tmp_path / 'run'
    assert train_main(['--config', str(_config(tmp_path, mode=mode)), '--out', str(out), '--no-progress']) == 0
    for name in ('config.yaml', 'last.safetensors', 'last.optim.safetensors', 'losses.csv', 'losses.png',
                 'final.safetensors'):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(open(out / 'losses.csv')))
    assert [int(r['step']) for r in rows] == [1, 2, 3]
    assert all(float(r['loss']) > 0 for r in rows)
    # Resume continues at the saved step and appends to the log.
    assert train_main(['--config', str(_config(tmp_path, mode=mode)), '--out', str(out), '--resume',
                       '--steps', '5', '--no-progress']) == 0
    rows = list(csv.DictReader(open(out / 'losses.csv')))
    assert [int(r['step']) for r in rows] == [1, 2, 3, 4, 5]
    # keep_every: fp16 snapshots of steps 2 and 4 stay next to last.safetensors (the learning curve's points).
    assert sorted(p.name for p in out.glob('step-*')) == ['step-000002.safetensors', 'step-000004.safetensors']
    snaps = [load_dro(str(out / f'step-00000{k}.safetensors'), dtype=torch.float32).state_dict() for k in (2, 4)]
    assert any(not torch.equal(snaps[0][k], snaps[1][k]) for k in snaps[0])     # two different training states
    model = load_dro(str(out / 'final.safetensors'), dtype=torch.float32)
    x = torch.rand(1, 3, 64, 80)
    o = model(x, x[:, None], torch.tensor([[60.0, 0, 40], [0, 60, 32], [0, 0, 1]]), iterations=1)
    assert torch.isfinite(o.inv_depth).all()


def test_bad_configs_are_rejected(tmp_path):
    with pytest.raises(ValueError, match='unknown training config keys'):
        TrainConfig.from_dict({'stepz': 3})
    with pytest.raises(ValueError, match='multiples of 16'):
        TrainConfig.from_dict({'height': 100}).validate()
    with pytest.raises(ValueError, match='keep_every'):
        TrainConfig.from_dict({'ckpt_every': 50, 'keep_every': 75}).validate()
    with pytest.raises(ValueError, match='mode'):
        TrainConfig.from_dict({'mode': 'magic'}).validate()
