"""Training the light metric model: dataset, losses, the CLI's config dispatch, resume and held-out report."""
import json

import numpy as np
import pytest
import torch
import yaml

from dro_depth.data.mono_dataset import MonoDepthDataset, domain_of
from dro_depth.data.synthetic import generate_sequence
from dro_depth.models.metric.light import load_light_zoedepth
from dro_depth.training.metric import MetricTrainConfig, metric_losses, train_metric


@pytest.fixture(scope='module')
def seqs():
    return [generate_sequence('indoor', seed=5, n_frames=4, height=96, width=128),
            generate_sequence('outdoor', seed=5, n_frames=4, height=96, width=128)]


def test_mono_dataset_items_and_labels(seqs):
    ds = MonoDepthDataset(seqs, 64, 96)
    assert len(ds) == 8 and [domain_of(s) for s in seqs] == ['indoor', 'outdoor']
    item = ds[5]
    assert item['image'].shape == (3, 64, 96) and item['depth'].shape == (1, 64, 96)
    assert item['domain'].item() == 1 and 0 <= item['image'].min() and item['image'].max() <= 1
    # no augmentation: deterministic and equal to the resized frame
    torch.testing.assert_close(ds[0]['image'], ds[0]['image'])
    aug = MonoDepthDataset(seqs, 64, 96, augment=True, seed=1)
    a = aug[0]
    d_plain, d_aug = ds[0]['depth'], a['depth']
    flipped = torch.equal(torch.nan_to_num(d_aug), torch.nan_to_num(d_plain.flip(-1)))
    assert flipped or torch.equal(torch.nan_to_num(d_aug), torch.nan_to_num(d_plain))  # geometry kept
    with pytest.raises(ValueError, match='indoor or outdoor'):
        MonoDepthDataset(seqs, 64, 96, domains=['indoor', 'space'])
    with pytest.raises(ValueError, match='2 sequences'):
        MonoDepthDataset(seqs, 64, 96, domains=['indoor'])


def test_losses_use_each_heads_range_and_train_the_router():
    class Out:
        pass
    out = Out()
    depth = torch.full((2, 1, 8, 8), 5.0)
    depth[1] = 50.0                         # beyond the indoor head's 10 m, inside the outdoor head's 80 m
    out.metric_depth = torch.full((2, 1, 8, 8), 5.0, requires_grad=True)
    out.domain_logits = torch.tensor([[4.0, -4.0], [-4.0, 4.0]], requires_grad=True)
    good = metric_losses(out, depth, torch.tensor([0, 1]))
    assert good['router_ce'] < 0.01
    wrong_route = metric_losses(out, depth, torch.tensor([1, 0]))
    assert wrong_route['router_ce'] > 5
    # image 1 labelled indoor: its 50 m pixels are outside the indoor head's range and are ignored
    indoor_only = metric_losses(out, depth, torch.tensor([0, 0]))
    assert indoor_only['silog'] < 1e-3
    good['loss'].backward()
    assert out.metric_depth.grad is not None and out.domain_logits.grad is not None


def test_config_validation():
    for bad, words in [({'variant': 'K'}, 'variant'), ({'height': 100}, 'multiples of 32'),
                       ({'output_stride': 4}, 'output_stride'), ({'steps': 0}, 'steps'),
                       ({'data': {'source': 'bag', 'paths': ['x']}}, 'data.domain'),
                       ({'model': 'dro'}, 'model')]:
        with pytest.raises(ValueError, match=words):
            MetricTrainConfig.from_dict(bad).validate()
    with pytest.raises(ValueError, match='unknown'):
        MetricTrainConfig.from_dict({'epochs': 3})


def test_train_resume_and_heldout(tmp_path):
    cfg = MetricTrainConfig.from_dict({
        'features': 16, 'height': 64, 'width': 96, 'steps': 4, 'batch_size': 2, 'log_every': 1,
        'ckpt_every': 2,
        'device': 'cpu', 'heldout_seeds': [1000], 'save_half': True,
        'data': {'seeds': [7], 'frames_per_sequence': 3, 'render_height': 96, 'render_width': 128}})
    final = train_metric(cfg, tmp_path, progress=False)
    for name in ('config.yaml', 'last.safetensors', 'last.optim.safetensors', 'losses.csv', 'losses.png',
                 'heldout.json'):
        assert (tmp_path / name).is_file(), name
    model, meta = load_light_zoedepth(final)
    assert meta['variant'] == 'NK' and meta['width'] == 16 and meta['img_size'] == [64, 96]
    assert 'synthetic' in meta['trained_on']
    report = json.loads((tmp_path / 'heldout.json').read_text())
    assert set(report) >= {'indoor', 'outdoor', 'all'}
    for dom in ('indoor', 'outdoor'):
        assert report[dom]['n_frames'] > 0 and 0 <= report[dom]['route_accuracy'] <= 1
        assert np.isfinite(report[dom]['routed']['abs_rel'])
    rows = (tmp_path / 'losses.csv').read_text().strip().splitlines()
    assert len(rows) == 1 + 4
    # resume continues at the saved step and appends to the curve
    cfg.steps = 6
    train_metric(cfg, tmp_path, resume=True, progress=False)
    rows = (tmp_path / 'losses.csv').read_text().strip().splitlines()
    assert [int(r.split(',')[0]) for r in rows[1:]] == [1, 2, 3, 4, 5, 6]


def test_cli_dispatches_on_model_key(tmp_path):
    from dro_depth.training.command import main
    cfg = {'model': 'metric', 'features': 16, 'height': 64, 'width': 96, 'steps': 2, 'batch_size': 1,
           'device': 'cpu', 'data': {'seeds': [8], 'kinds': ['indoor'], 'frames_per_sequence': 2,
                                     'render_height': 64, 'render_width': 96}}
    path = tmp_path / 'metric.yaml'
    path.write_text(yaml.safe_dump(cfg))
    assert main(['--config', str(path), '--out', str(tmp_path / 'run'), '--no-progress']) == 0
    model, meta = load_light_zoedepth(tmp_path / 'run' / 'final.safetensors')
    assert meta['steps'] == 2
