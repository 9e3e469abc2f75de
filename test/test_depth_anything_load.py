"""Depth Anything V2: strict key/shape match with the released manifests, loading errors, preprocessing,
position-embedding interpolation against an independent bicubic."""
import json
import math

import numpy as np
import pytest
import torch

from dro_depth.errors import DroDepthError
from dro_depth.models.checkpoints import CheckpointError
from dro_depth.models.depth_anything import (build_depth_anything, image_to_tensor, interpolate_pos_embed,
                                             load_depth_anything, network_size, resize_back)
from reference_data import reference_dir

REF = reference_dir('depth_anything')
needs_ref = pytest.mark.skipif(not (REF / 'da2_mini.pt').is_file(), reason=f'reference missing: {REF}')


def _manifest(name):
    return json.loads((REF / name).read_text())


def _shapes(entries):
    if isinstance(entries, dict):
        return [(k, tuple(v)) for k, v in entries.items()]
    return [(e['key'] if isinstance(e, dict) else e[0], tuple(e['shape'] if isinstance(e, dict) else e[1]))
            for e in entries]


@needs_ref
@pytest.mark.parametrize('encoder,metric,fname', [
    ('vits', False, 'da2_vits_state_dict_shapes.json'), ('vitb', False, 'da2_vitb_state_dict_shapes.json'),
    ('vitl', False, 'da2_vitl_state_dict_shapes.json'),
    ('vits', True, 'da2_metric_vits_state_dict_shapes.json')])
def test_keys_shapes_and_order_match_release(encoder, metric, fname):
    expected = _shapes(_manifest(fname)['state_dict'])
    model = build_depth_anything(encoder, metric=metric, device='meta')
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert got == expected
    assert sum(math.prod(s) for _, s in got) == sum(math.prod(s) for _, s in expected)


@needs_ref
def test_metric_and_relative_vitb_vitl_keys_equal():
    for enc in ('vitb', 'vitl'):
        rel = build_depth_anything(enc, device='meta').state_dict()
        met = build_depth_anything(enc, metric=True, max_depth=80.0, device='meta').state_dict()
        assert [(k, v.shape) for k, v in rel.items()] == [(k, v.shape) for k, v in met.items()]


@pytest.fixture(scope='module')
def mini_sd():
    if not (REF / 'da2_mini.pt').is_file():
        pytest.skip('reference missing')
    return torch.load(REF / 'da2_mini.pt', weights_only=True)['state_dict']


def test_register_tokens_key_is_named(mini_sd):
    sd = dict(mini_sd, **{'pretrained.register_tokens': torch.zeros(1, 4, 384)})
    with pytest.raises(CheckpointError, match='pretrained.register_tokens'):
        load_depth_anything(sd, depth=4, hooks=[0, 1, 2, 3])


def test_missing_and_misshaped_keys_are_named(mini_sd):
    sd = dict(mini_sd)
    del sd['depth_head.scratch.output_conv2.2.bias']
    sd['depth_head.projects.0.weight'] = torch.zeros(47, 384, 1, 1)
    with pytest.raises(CheckpointError) as err:
        load_depth_anything(sd, depth=4, hooks=[0, 1, 2, 3])
    assert 'output_conv2.2.bias' in str(err.value) and 'depth_head.projects.0.weight' in str(err.value)


def test_default_depth_rejects_mini_and_encoder_mismatch(mini_sd):
    with pytest.raises(CheckpointError, match='missing keys.*blocks.4'):
        load_depth_anything(mini_sd)
    with pytest.raises(CheckpointError, match='encoder mismatch.*384.*vitb'):
        load_depth_anything(mini_sd, encoder='vitb', depth=4, hooks=[0, 1, 2, 3])


def test_zoedepth_like_file_and_file_roundtrip(tmp_path, mini_sd):
    with pytest.raises(CheckpointError, match='ZoeDepth'):
        load_depth_anything({'core.core.pretrained.model.cls_token': torch.zeros(1, 1, 8)})
    path = tmp_path / 'da.pth'
    torch.save({'model': {'module.' + k: v for k, v in mini_sd.items()}}, path)
    model = load_depth_anything(path, metric=True, depth=4, hooks=[0, 1, 2, 3])
    assert torch.equal(model.pretrained.pos_embed.detach(), mini_sd['pretrained.pos_embed'].float())
    with pytest.raises(DroDepthError, match='multiple of 14'):
        model(torch.zeros(1, 3, 20, 28))


def test_network_size_official_examples():
    rec = {'640x480': (686, 518), '480x640': (518, 686), '1242x375': (1722, 518), '1024x768': (686, 518),
           '518x518': (518, 518), '1920x1080': (924, 518), '100x75': (686, 518)}
    for wh, (nw, nh) in rec.items():
        w, h = map(int, wh.split('x'))
        assert network_size(h, w) == (nh, nw)
    with pytest.raises(DroDepthError, match='too small'):
        network_size(13, 100)


@needs_ref
def test_preprocessing_matches_official_record():
    pre = torch.load(REF / 'da2_mini.pt', weights_only=True)['preprocessing']['sample']
    bgr = pre['raw_bgr_uint8'].numpy()
    keys = [k for k, v in pre.items() if k != 'raw_bgr_uint8']
    record = next(pre[k] for k in keys if isinstance(pre[k], dict) and 'shape' in pre[k])
    x = image_to_tensor(bgr, bgr=True, dtype=torch.float64)
    assert list(x.shape) == list(record['shape'])
    ref = record['full'] if 'full' in record else record['sample']
    got = x.reshape(-1) if 'full' in record else \
        x.reshape(-1)[record['sample_start']::record['sample_step']][:record['sample_count']]
    assert float((got - ref.reshape(-1).double()).abs().max()) <= 1e-3 * record['absmax']
    rgb = image_to_tensor(bgr[..., ::-1].copy())
    assert torch.allclose(rgb.double(), x, atol=2e-4)


def _cubic(t, a=-0.75):
    t = abs(t)
    if t <= 1:
        return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
    if t < 2:
        return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
    return 0.0


def _bicubic_matrix(n_in, n_out, scale):
    """Resampling matrix with src = (dst + 0.5) / scale - 0.5, clamped borders (independent of torch)."""
    m = np.zeros((n_out, n_in))
    for d in range(n_out):
        src = (d + 0.5) / scale - 0.5
        base = math.floor(src)
        for k in range(-1, 3):
            m[d, min(max(base + k, 0), n_in - 1)] += _cubic(src - (base + k))
    return m


@pytest.mark.parametrize('h,w', [(518, 686), (364, 266), (154, 980), (518, 532), (14, 14), (742, 742)])
def test_pos_embed_interpolation_independent(h, w):
    torch.manual_seed(1)
    pe = torch.randn(1, 1 + 37 * 37, 8, dtype=torch.float64)
    out = interpolate_pos_embed(pe, h, w)
    gh, gw = h // 14, w // 14
    assert out.shape == (1, 1 + gh * gw, 8) and out.dtype == torch.float64
    grid = pe[0, 1:].float().double().numpy().reshape(37, 37, 8)
    mh = _bicubic_matrix(37, gh, (gh + 0.1) / 37)
    mw = _bicubic_matrix(37, gw, (gw + 0.1) / 37)
    expected = np.einsum('ij,jkc,lk->ilc', mh, grid, mw).reshape(gh * gw, 8)
    assert np.abs(out[0, 1:].numpy() - expected).max() < 1e-4  # float32 step of the official code
    assert torch.equal(out[0, 0], pe[0, 0].float().double())
    assert torch.equal(interpolate_pos_embed(pe, 518, 518), pe)


def test_resize_back_align_corners():
    d = torch.arange(4.0).view(1, 1, 4).expand(1, 2, 4).contiguous()
    up = resize_back(d, 2, 7)
    assert torch.allclose(up[0, 0], torch.linspace(0, 3, 7))
