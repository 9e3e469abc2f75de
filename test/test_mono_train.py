"""`dro-depth train` with ``model: mono``: labeled only, with pseudo-labels (+ feature alignment), resume."""
import csv

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open

from dro_depth.cli import main as cli_main
from dro_depth.data.domains import restyle_scene, styled_scene
from dro_depth.data.pseudo_labels import PseudoLabelWriter
from dro_depth.data.synthetic import generate_sequence
from dro_depth.models.mono_light import LightRelativeDepth, load_light_relative, save_light_relative

DATA = {'kinds': ['indoor'], 'seeds': [7], 'frames_per_sequence': 3, 'render_height': 64, 'render_width': 96}


@pytest.fixture(scope='module')
def pl_folder(tmp_path_factory):
    """Pseudo-labels of held-out-look images (labels: the true inverse depth, as a perfect teacher's)."""
    seq = generate_sequence('indoor', seed=8, n_frames=3, height=64, width=96,
                            scene=styled_scene('indoor', 8, 'heldout'))
    out = tmp_path_factory.mktemp('pl') / 'pl'
    with PseudoLabelWriter(out, {'kind': 'ground truth'}) as w:
        for i in range(len(seq)):
            w.add(seq.images[i], (1.0 / seq.depths[i]).astype(np.float32), 'synthetic', i, i)
    return out


def _train(tmp_path, capsys, cfg, *extra):
    path = tmp_path / 'cfg.yaml'
    path.write_text(yaml.safe_dump(cfg))
    code = cli_main(['train', '--config', str(path), '--out', str(tmp_path / 'run'), '--no-progress', *extra])
    return code, capsys.readouterr()


def _rows(run):
    with open(run / 'losses.csv') as f:
        return list(csv.DictReader(f))


def _step(path):
    with safe_open(str(path), 'pt') as f:
        return int(f.metadata()['step'])


def test_labeled_only_two_steps(tmp_path, capsys):
    cfg = {'model': 'mono', 'features': 16, 'height': 64, 'width': 96, 'steps': 2, 'batch_size': 2,
           'device': 'cpu', 'log_every': 1, 'data': DATA}
    code, cap = _train(tmp_path, capsys, cfg)
    assert code == 0, cap.err
    run = tmp_path / 'run'
    rows = _rows(run)
    assert [r['step'] for r in rows] == ['1', '2'] and 'pseudo' not in rows[0] and float(rows[0]['ssi']) > 0
    assert _step(run / 'last.safetensors') == 2
    assert load_light_relative(run / 'final.safetensors')[1]['img_size'] == [64, 96]


def test_with_pseudo_labels_and_feature_alignment(tmp_path, capsys, pl_folder):
    encoder = save_light_relative(LightRelativeDepth(16, 1, (64, 96)),
                                  tmp_path / 'frozen.safetensors')
    cfg = {'model': 'mono', 'features': 16, 'height': 64, 'width': 96, 'steps': 2, 'batch_size': 2,
           'pseudo_batch_size': 2, 'pseudo_labels': [str(pl_folder)], 'cutmix_prob': 1.0,
           'feature_encoder': str(encoder), 'feature_weight': 0.1, 'device': 'cpu', 'log_every': 1,
           'heldout_seeds': [1000], 'heldout_frames': 1, 'data': DATA}
    code, cap = _train(tmp_path, capsys, cfg)
    assert code == 0, cap.err
    rows = _rows(tmp_path / 'run')
    assert len(rows) == 2 and float(rows[0]['pseudo']) > 0 and 'feature' in rows[0]
    # the total is labeled + pseudo + 0.1 feature (first row: no smoothing yet)
    r = rows[0]
    assert abs(float(r['loss']) - (float(r['labeled']) + float(r['pseudo']) + 0.1 * float(r['feature']))) < 1e-4
    report = yaml.safe_load((tmp_path / 'run' / 'heldout.json').read_text())
    assert report['all']['n_images'] == 1 and 0 < report['all']['lsq']['abs_rel'] < 10
    run = tmp_path / 'run'
    before = load_light_relative(run / 'last.safetensors')[0].state_dict()
    code, cap = _train(tmp_path, capsys, {**cfg, 'steps': 3}, '--resume')
    assert code == 0, cap.err
    assert [x['step'] for x in _rows(run)] == ['1', '2', '3'] and _step(run / 'last.safetensors') == 3
    after = load_light_relative(run / 'final.safetensors')[0].state_dict()
    # the resumed step trained the loaded weights
    assert any(v.is_floating_point() and not torch.equal(v, before[k]) for k, v in after.items())


@pytest.mark.parametrize('change, needle', [
    ({'height': 70}, 'multiples of 32'), ({'ignore_top': 1.0}, 'ignore_top'),
    ({'feature_weight': 0.5}, 'feature_encoder'), ({'heldout_style': 'neon'}, 'heldout_style'),
    ({'pseudo_labels': ['no_such_folder']}, 'no_such_folder'),
])
def test_bad_configs_are_one_line_errors(tmp_path, capsys, change, needle):
    cfg = {'model': 'mono', 'features': 16, 'height': 64, 'width': 96, 'steps': 1, 'device': 'cpu', 'data': DATA,
           **change}
    code, cap = _train(tmp_path, capsys, cfg)
    lines = cap.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], cap.err


def test_heldout_look_keeps_geometry_and_the_standard_look_is_untouched():
    std = styled_scene('indoor', 5, 'standard')
    alt = restyle_scene(std)
    assert np.array_equal(std.box_lo, alt.box_lo) and alt.atlas is not std.atlas
    assert set(alt.atlas.kinds).isdisjoint({'bricks', 'checker', 'stripes', 'tiles', 'wood', 'fabric', 'plaster'})
    a = generate_sequence('indoor', seed=5, n_frames=2, height=32, width=48)
    b = generate_sequence('indoor', seed=5, n_frames=2, height=32, width=48, scene=std)
    c = generate_sequence('indoor', seed=5, n_frames=2, height=32, width=48, scene=alt)
    assert np.array_equal(a.images, b.images)                       # styled_scene('standard') is the default
    np.testing.assert_array_equal(a.depths, c.depths)               # same geometry and path ...
    assert np.abs(a.images.astype(int) - c.images.astype(int)).mean() > 10    # ... another look
