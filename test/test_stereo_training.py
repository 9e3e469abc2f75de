"""Stereo training recipe: a few real steps, resume, a loadable result."""
import csv

import pytest
import torch

from dro_depth.models.stereo import load_raft_stereo
from dro_depth.training.stereo import StereoTrainConfig, freeze_batch_norm, one_cycle, train_stereo

RAW = {'model': 'stereo', 'steps': 1, 'batch_size': 1, 'train_iters': 2, 'crop_height': 64, 'crop_width': 64,
       'log_every': 1, 'ckpt_every': 1, 'threads': 1,
       'data': {'seeds': [1], 'kinds': ['indoor'], 'frames_per_sequence': 1, 'render_height': 64,
                'render_width': 64}}


def test_train_resume_and_load(tmp_path):
    final = train_stereo(StereoTrainConfig.from_dict(RAW), tmp_path, progress=False)
    first = load_raft_stereo(final)
    assert first.cfg.variant == 'realtime' and not first.training
    train_stereo(StereoTrainConfig.from_dict({**RAW, 'steps': 2}), tmp_path, resume=True, progress=False)
    rows = list(csv.DictReader(open(tmp_path / 'losses.csv')))
    assert [int(r['step']) for r in rows] == [1, 2]          # resumed, not restarted
    assert all(float(r['loss']) > 0 and float(r['epe']) >= 0 for r in rows)
    assert (tmp_path / 'losses.png').is_file()


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match='multiples of 32'):
        StereoTrainConfig.from_dict({**RAW, 'crop_width': 70}).validate()
    with pytest.raises(ValueError, match='variant'):
        StereoTrainConfig.from_dict({**RAW, 'variant': 'huge'}).validate()


def test_one_cycle_warms_up_then_anneals_and_resumes():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    sched = one_cycle(opt, 1000, 1.0)
    lrs = []
    for _ in range(1000):
        lrs.append(opt.param_groups[0]['lr'])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1 / 25) and max(lrs) == pytest.approx(1.0, rel=1e-3)
    assert lrs[-1] < 0.1 and lrs[500] > lrs[900]
    opt2 = torch.optim.AdamW([p], lr=1.0)
    one_cycle(opt2, 1000, 1.0, start=500)
    assert opt2.param_groups[0]['lr'] == pytest.approx(lrs[500])


def test_frozen_batch_norm_keeps_running_stats():
    from dro_depth.models.stereo import REALTIME, RAFTStereo
    model = RAFTStereo(REALTIME).train()
    freeze_batch_norm(model)
    before = model.cnet.norm1.running_mean.clone()
    model(torch.rand(1, 3, 64, 64) * 255, torch.rand(1, 3, 64, 64) * 255, iters=1)
    assert torch.equal(before, model.cnet.norm1.running_mean)
