"""Resolving a Depth Anything V2 checkpoint for mono_depth_node (kind from the name, encoder and blocks from
the tensors, refusals with reasons) and the flip-consistency confidence."""
import numpy as np
import pytest
import torch

from dro_depth.errors import ConfigError, DroDepthError
from dro_depth.models.checkpoints import CheckpointError, save_state_dict
from dro_depth.models.depth_anything import build_depth_anything
from dro_depth.mono import MonoDepthEstimator
from dro_depth.mono.checkpoint import open_mono_checkpoint, quarter_hooks
from dro_depth.mono.confidence import flip_consistency, mirrored_depth


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    torch.manual_seed(0)
    sd = build_depth_anything('vits', depth=5, hooks=(0, 1, 2, 4)).state_dict()
    d = tmp_path_factory.mktemp('da')
    names = {'indoor': 'depth_anything_v2_metric_hypersim_vits.safetensors',
             'outdoor': 'depth_anything_v2_metric_vkitti_vits.safetensors',
             'relative': 'depth_anything_v2_vits.safetensors', 'student': 'student.safetensors'}
    out = {k: str(save_state_dict(sd, d / n)) for k, n in names.items()}
    out['zoe'] = str(save_state_dict({'core.core.pretrained.x': torch.zeros(2)}, d / 'zoe.safetensors'))
    return out


def test_quarter_hooks_match_the_released_small_and_base_layout():
    assert quarter_hooks(12) == (2, 5, 8, 11) and quarter_hooks(4) == (0, 1, 2, 3)
    assert quarter_hooks(5) == (0, 1, 2, 4)


def test_kind_max_depth_encoder_and_blocks_are_resolved(files):
    indoor, model = open_mono_checkpoint(files['indoor'])
    assert (indoor.metric, indoor.max_depth, indoor.encoder, indoor.depth) == (True, 20.0, 'vits', 5)
    assert model.cfg.metric and model.cfg.max_depth == 20.0 and len(model.pretrained.blocks) == 5
    outdoor, _ = open_mono_checkpoint(files['outdoor'], hooks=(0, 1, 2, 4))          # stated = inferred
    assert outdoor.max_depth == 80.0 and outdoor.kind_from == 'file name'
    relative, model = open_mono_checkpoint(files['relative'])           # hooks inferred: last of each quarter
    assert not relative.metric and relative.hooks == (0, 1, 2, 4) and not model.cfg.metric
    student, model = open_mono_checkpoint(files['student'], kind='metric', max_depth=10.0)
    assert student.kind_from == 'parameter' and model.cfg.max_depth == 10.0


@pytest.mark.parametrize('key, kw, error, match', [
    ('relative', {'kind': 'metric'}, ConfigError, "relative Depth Anything V2 checkpoint.*kind is 'metric'"),
    ('indoor', {'kind': 'relative'}, ConfigError, r"metric \(indoor\).*kind is 'relative'"),
    ('student', {}, ConfigError, 'does not say whether'),
    ('student', {'kind': 'metric'}, ConfigError, 'metric_max_depth'),
    ('relative', {'encoder': 'vitb'}, CheckpointError, 'encoder mismatch'),
    ('relative', {'hooks': (0, 1, 2, 9)}, ConfigError, r'hooks \(0, 1, 2, 9\)'),
    ('zoe', {'kind': 'relative'}, CheckpointError, 'ZoeDepth'),
])
def test_wrong_checkpoints_are_refused_with_a_reason(files, key, kw, error, match):
    with pytest.raises(error, match=match):
        open_mono_checkpoint(files[key], **kw)


def test_missing_or_empty_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'):
        open_mono_checkpoint(tmp_path / 'depth_anything_v2_vits.pth')
    with pytest.raises(ConfigError, match='required'):
        open_mono_checkpoint('')


def test_flip_consistency():
    d = np.full((4, 6), 2.0, np.float32)
    assert np.allclose(flip_consistency(d, d), 1.0)
    other = d.copy()
    other[0, 0], other[1, 1], other[2, 2] = 2.2, np.nan, 0.0
    conf = flip_consistency(d, other)
    assert conf[0, 0] == pytest.approx(np.exp(-1.0), rel=1e-5)           # 10 % disagreement -> 1/e
    assert conf[1, 1] == 0 and conf[2, 2] == 0 and conf.dtype == np.float32
    with pytest.raises(DroDepthError, match='same'):
        flip_consistency(d, d[:, :5])


def test_mirrored_depth_lines_up_with_the_image(files):
    ckpt, model = open_mono_checkpoint(files['indoor'])
    est = MonoDepthEstimator(ckpt.config(input_size=42, device='cpu'), model=model)
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    depth = est.predict(image).depth
    assert not np.allclose(depth, depth[:, ::-1])                        # not symmetric: the test can fail
    np.testing.assert_allclose(mirrored_depth(est, np.ascontiguousarray(image[:, ::-1])), depth[:, ::-1],
                               rtol=1e-5)
    rel, rel_model = open_mono_checkpoint(files['relative'])
    with pytest.raises(DroDepthError, match='metric'):
        mirrored_depth(MonoDepthEstimator(rel.config(input_size=42, device='cpu'), model=rel_model), image)
