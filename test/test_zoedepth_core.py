"""MiDaS BEiT/DPT core at reduced width vs the official float64 run (beit_core_mini.pt); pre-processing."""
import json

import pytest
import torch

from reference_data import reference_dir
from dro_depth.models.metric import BeitDPTConfig, MidasCore, network_size, prepare_for_midas
from dro_depth.models.metric.beit import relative_position_index, resize_relative_position_table
from dro_depth.models.metric.dpt import LAYER_NAMES
from dro_depth.models.metric.preprocess import pad_amounts




REF = reference_dir('zoedepth')
needs_ref = pytest.mark.skipif(not (REF / 'beit_core_mini.pt').is_file(),
                               reason=f'ZoeDepth reference data not found in {REF} (set DRO_DEPTH_REFERENCE)')


def rel_err(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max())


def compare_stored(mine, stored, tol):
    """Compare a full tensor with the reference's storage dict (full, or strided sample + corners + sums)."""
    assert list(mine.shape) == list(stored['shape'])
    if 'full' in stored:
        assert rel_err(mine, stored['full']) <= tol
        return
    s = stored['stride']
    if 'last8' in stored:  # tokens (B, N, C)
        assert rel_err(mine[:, ::s, :], stored['sub']) <= tol
        assert rel_err(mine[:, -8:, :], stored['last8']) <= tol
        assert rel_err(mine.sum((0, 1)), stored['sum_bn']) <= max(tol, 1e-12)
        return
    assert rel_err(mine[..., ::s, ::s], stored['sub']) <= tol
    assert rel_err(mine[..., :8, :8], stored['crop_tl']) <= tol
    assert rel_err(mine[..., -8:, -8:], stored['crop_br']) <= tol
    assert rel_err(mine.sum((0, 2, 3)), stored['sum_bhw']) <= max(tol, 1e-12)


@pytest.fixture(scope='module')
def ref():
    return torch.load(REF / 'beit_core_mini.pt', weights_only=True)


@pytest.fixture(scope='module')
def core64(ref):
    core = MidasCore(BeitDPTConfig.mini())
    core.core.load_state_dict(ref['state_dict'], strict=True)
    return core.to(torch.float64).eval()


@pytest.fixture(scope='module')
def runs64(ref, core64):
    out = {}
    for case, data in ref['cases'].items():
        inter = {}
        with torch.no_grad():
            x = prepare_for_midas(data['image'].double(), do_resize=False)  # reference: network-sized input
            rel, feats = core64(x, inter)
        out[case] = (rel, feats, inter)
    return out


@needs_ref
def test_mini_config_matches_reference(ref):
    cfg = BeitDPTConfig.mini()
    c = ref['config']
    kw = c['beit_kwargs']
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads) == (kw['embed_dim'], kw['depth'], kw['num_heads'])
    assert list(cfg.hooks) == c['hooks'] and list(cfg.reassemble_channels) == c['readout_features']
    assert cfg.features == c['features'] and cfg.head_features_2 == c['head_features_2']
    full = BeitDPTConfig()
    assert (full.embed_dim, full.depth, full.num_heads) == (1024, 24, 16)
    assert list(full.hooks) == c['hooks_full']
    assert list(full.reassemble_channels) == c['readout_features_full']
    assert BeitDPTConfig.evenly_spaced_hooks(24) == full.hooks
    assert BeitDPTConfig.evenly_spaced_hooks(4) == cfg.hooks
    n_params = sum(p.numel() for p in MidasCore(cfg).parameters())
    assert n_params == c['n_parameters']


@needs_ref
@pytest.mark.parametrize('case', ['main', 'second'])
def test_core_float64_matches_official(ref, runs64, case):
    data = ref['cases'][case]
    rel, feats, _ = runs64[case]
    assert rel.shape == tuple(data['rel_depth']['shape'])
    assert rel_err(rel, data['rel_depth']['full']) <= 1e-12
    assert len(feats) == len(LAYER_NAMES)
    for name, f in zip(LAYER_NAMES, feats):
        compare_stored(f, data['features'][name], 1e-12)


@needs_ref
@pytest.mark.parametrize('case', ['main', 'second'])
def test_core_intermediates_match(ref, runs64, case):
    data = ref['cases'][case]
    _, _, inter = runs64[case]
    stored = data['intermediates']
    checked = 0
    for name, entry in stored.items():
        if name == 'rel_pos_bias_table_interpolated':
            continue
        compare_stored(inter[name], entry, 1e-6)  # stored as float32
        checked += 1
    assert checked >= (30 if case == 'main' else 16)


@needs_ref
@pytest.mark.parametrize('case', ['main', 'second'])
def test_relative_position_table_resize(ref, core64, case):
    data = ref['cases'][case]
    h, w = (s // 16 for s in data['image'].shape[-2:])
    for key, table in data['intermediates']['rel_pos_bias_table_interpolated'].items():
        attn = core64.core.pretrained.model.blocks[int(key[len('block'):])].attn
        assert rel_err(attn.interpolated_table((h, w)), table) <= 1e-15
        assert attn.relative_position_bias((h, w)).shape == (1, 4, h * w + 1, h * w + 1)


@needs_ref
def test_relative_position_index_equals_checkpoint(ref):
    stored = ref['state_dict']['pretrained.model.blocks.0.attn.relative_position_index']
    assert torch.equal(relative_position_index((24, 24)), stored)
    # Same window: resizing the table is the identity.
    table = ref['state_dict']['pretrained.model.blocks.0.attn.relative_position_bias_table'].double()
    assert torch.equal(resize_relative_position_table(table, 24, (24, 24)), table)


def test_relative_position_index_non_square():
    idx = relative_position_index((2, 3))
    n = 3 * 5 + 3
    assert idx.shape == (7, 7) and idx[0, 0] == n - 1
    assert (idx[0, 1:] == n - 3).all() and (idx[1:, 0] == n - 2).all()
    # query patch (1, 2) vs key patch (0, 0): dy = 1, dx = 2 -> (1 + 1) * 5 + (2 + 2) = 14
    assert idx[1 + 1 * 3 + 2, 1 + 0] == 14
    assert idx[1:, 1:].diagonal().unique().tolist() == [(2 - 1) * 5 + (3 - 1)]


@needs_ref
def test_core_float32_within_tolerance(ref):
    core = MidasCore(BeitDPTConfig.mini())
    core.core.load_state_dict(ref['state_dict'], strict=True)
    core.eval()
    data = ref['cases']['second']
    with torch.no_grad():
        rel, feats = core(prepare_for_midas(data['image'].float(), do_resize=False))
    assert rel.dtype == torch.float32
    assert rel_err(rel, data['rel_depth']['full']) <= 1e-4
    compare_stored(feats[0], data['features']['out_conv'], 1e-4)


def test_core_rejects_bad_sizes():
    core = MidasCore(BeitDPTConfig(embed_dim=32, depth=4, num_heads=2, hooks=(0, 1, 2, 3),
                                   reassemble_channels=(8, 8, 8, 8), features=8))
    with pytest.raises(ValueError, match='multiple'):
        core(torch.zeros(1, 3, 40, 64))
    with pytest.raises(ValueError, match='hooks'):
        BeitDPTConfig(depth=4)


def test_network_size_rule():
    shapes = json.loads((REF / 'zoed_m12_n_state_dict_shapes.json').read_text()) if (
        REF / 'zoed_m12_n_state_dict_shapes.json').is_file() else None
    examples = {'infer': {'480x640': [384, 512], '375x1242': [384, 1280], '720x1280': [384, 672],
                          '512x512': [512, 512]},
                'eval': {'480x640': [384, 512], '375x1242': [384, 512]}}
    if shapes is not None:
        examples = shapes['preprocessing']['example_sizes_HxW']
    for mode, table in examples.items():
        for hw, expected in table.items():
            h, w = (int(v) for v in hw.split('x'))
            assert list(network_size(h, w, (384, 512), keep_aspect_ratio=(mode == 'infer'))) == expected, hw
    assert pad_amounts(480, 640) == (int((240 ** 0.5) * 3), int((320 ** 0.5) * 3))


def test_prepare_for_midas_resizes_and_normalises():
    img = torch.rand(2, 3, 375, 500, dtype=torch.float64)
    x = prepare_for_midas(img, (384, 512), keep_aspect_ratio=True)
    assert x.shape == (2, 3, 384, 512)
    ref = torch.nn.functional.interpolate(img, size=(384, 512), mode='bilinear', align_corners=True) * 2 - 1
    assert torch.allclose(x, ref, rtol=0, atol=1e-15)
    # Corners are kept exactly with align_corners=True.
    assert torch.equal(x[..., 0, 0], img[..., 0, 0] * 2 - 1)
    same = torch.rand(1, 3, 384, 512)
    assert torch.equal(prepare_for_midas(same), (same - 0.5) / 0.5)
    with pytest.raises(ValueError):
        prepare_for_midas(torch.rand(3, 64, 64))
    with pytest.raises(TypeError):
        prepare_for_midas(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
