"""Checkpoint layout of the full ZoeD_M12_{N,K,NK} models (meta device only) and loading / inference API."""
import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from reference_data import reference_dir
from dro_depth.models.metric import (BeitDPTConfig, CheckpointMismatchError, MidasCore, ZoeDepth,
                                     ZoeDepthHead, ZoeDepthHeadConfig, build_zoedepth, load_zoedepth,
                                     read_state_dict)
from dro_depth.models.metric.preprocess import pad_amounts




REF = reference_dir('zoedepth')
needs_ref = pytest.mark.skipif(not (REF / 'zoed_m12_nk_state_dict_shapes.json').is_file(),
                               reason=f'ZoeDepth reference data not found in {REF} (set DRO_DEPTH_REFERENCE)')


def _manifest(variant):
    return json.loads((REF / f'zoed_m12_{variant}_state_dict_shapes.json').read_text())


def _meta_state_dict(manifest):
    return {k: torch.empty(v['shape'], dtype=getattr(torch, v['dtype']), device='meta')
            for k, v in manifest['state_dict'].items()}


@needs_ref
@pytest.mark.parametrize('variant', ['n', 'nk'])
def test_full_model_state_dict_equals_release_layout(variant):
    manifest = _manifest(variant)
    with torch.device('meta'):
        model = build_zoedepth(variant.upper())
    sd = model.state_dict()
    assert all(t.is_meta for t in sd.values())
    expected = manifest['state_dict']
    assert set(sd) == set(expected)
    assert list(sd) == list(expected)  # same order as the official module tree
    for key, entry in expected.items():
        assert list(sd[key].shape) == entry['shape'], key
        assert str(sd[key].dtype) == 'torch.' + entry['dtype'], key
    params = dict(model.named_parameters())
    assert {k for k, e in expected.items() if e['kind'] == 'param'} == set(params)
    assert sum(p.numel() for p in params.values()) == manifest['n_parameters']
    assert model.variant == variant.upper()


@needs_ref
@pytest.mark.parametrize('variant', ['n', 'nk'])
def test_load_zoedepth_accepts_release_layout(variant):
    manifest = _manifest(variant)
    wrapped = {'model': {'module.' + k: v for k, v in _meta_state_dict(manifest).items()}}
    model = load_zoedepth(wrapped, device='meta')
    assert model.variant == variant.upper() and not model.training
    assert model.core.config == BeitDPTConfig()
    assert model.img_size == (384, 512)
    assert set(model.state_dict()) == set(manifest['state_dict'])
    # Newer timm exports drop the persistent relative_position_index buffers: still loads.
    no_index = {k: v for k, v in _meta_state_dict(manifest).items()
                if not k.endswith('relative_position_index')}
    assert len(no_index) == len(manifest['state_dict']) - 24
    assert load_zoedepth(no_index, device='meta').variant == variant.upper()


@needs_ref
def test_load_zoedepth_reports_mismatches():
    sd = _meta_state_dict(_manifest('n'))
    extra = dict(sd, **{'core.core.pretrained.model.blocks.3.attn.extra_bias': torch.empty(4, device='meta')})
    with pytest.raises(CheckpointMismatchError, match='unexpected.*blocks.3.attn.extra_bias'):
        load_zoedepth(extra, device='meta')
    missing = {k: v for k, v in sd.items() if k != 'core.core.scratch.refinenet2.out_conv.bias'}
    with pytest.raises(CheckpointMismatchError, match='missing.*refinenet2.out_conv.bias'):
        load_zoedepth(missing, device='meta')
    bad = dict(sd, **{'projectors.1._net.2.bias': torch.empty(7, device='meta')})
    with pytest.raises(CheckpointMismatchError, match='projectors.1._net'):
        load_zoedepth(bad, device='meta')
    head_only = {k: v for k, v in sd.items() if not k.startswith('core.')}
    with pytest.raises(CheckpointMismatchError, match='not a full ZoeDepth'):
        load_zoedepth(head_only, device='meta')
    with pytest.raises(CheckpointMismatchError, match='NK'):
        load_zoedepth(_meta_state_dict(_manifest('nk')), variant='N', device='meta')


@needs_ref
def test_k_variant_layout_and_detection():
    n_keys = _manifest('n')['state_dict']
    with torch.device('meta'):
        model_k = build_zoedepth('K')
    sd = model_k.state_dict()
    assert set(sd) == set(n_keys)  # same key set as N ...
    diff = sorted(k for k in sd if list(sd[k].shape) != n_keys[k]['shape'])
    assert diff == [f'attractors.{i}._net.2.{p}' for i in range(4) for p in ('bias', 'weight')]
    # ... but two outputs per attractor point
    assert [sd[f'attractors.{i}._net.2.weight'].shape[0] for i in range(4)] == [32, 16, 8, 2]
    loaded = load_zoedepth(sd, device='meta')
    assert loaded.variant == 'K' and loaded.img_size == (384, 768)
    assert loaded.config.domains[0].name == 'kitti' and loaded.config.domains[0].max_depth == 80.0


def _mini_model(variant='N'):
    torch.manual_seed(0)
    core_cfg = BeitDPTConfig(embed_dim=32, depth=4, num_heads=2, hooks=(0, 1, 2, 3),
                             reassemble_channels=(8, 16, 16, 16), features=16)
    model = build_zoedepth(variant, core_cfg, img_size=(64, 96), bin_embedding_dim=16, seed_mlp_dim=16,
                           seed_projector_mlp_dim=16, projector_mlp_dim=16, attractor_mlp_dim=16, n_bins=16)
    with torch.no_grad():  # random, non-trivial weights everywhere
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return model.eval()


@pytest.mark.parametrize('variant', ['N', 'K', 'NK'])
def test_round_trip_through_files(tmp_path, variant):
    from safetensors.torch import save_file
    model = _mini_model(variant)
    sd = model.state_dict()
    torch.save({'model': {'module.' + k: v for k, v in sd.items()}}, tmp_path / 'zoe.pt')
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / 'zoe.safetensors'))
    img = torch.rand(2, 3, 50, 70)
    with torch.no_grad():
        want = model.infer(img)
    for name in ('zoe.pt', 'zoe.safetensors'):
        loaded = load_zoedepth(tmp_path / name, img_size=(64, 96))
        assert loaded.variant == variant and loaded.config == model.config
        got = loaded.infer(img)
        assert got.metric_depth.shape == (2, 1, 50, 70)
        assert torch.equal(got.metric_depth, want.metric_depth)
        assert got.route == want.route
    assert read_state_dict(tmp_path / 'zoe.pt').keys() == sd.keys()
    with pytest.raises(FileNotFoundError):
        load_zoedepth(tmp_path / 'missing.pt')


def test_infer_pads_resizes_and_crops():
    model = _mini_model('N').double()
    img = torch.rand(1, 3, 50, 70, dtype=torch.float64)
    out = model.infer(img)
    # Manual official pipeline: reflect pad, forward (resize to network size inside), bicubic back, crop.
    ph, pw = pad_amounts(50, 70)
    padded = F.pad(img, [pw, pw, ph, ph], mode='reflect')
    with torch.no_grad():
        net = model(padded)
    assert net.metric_depth.shape[-2:] == (64, 96) and net.rel_depth.shape == (1, 64, 96)
    up = F.interpolate(net.metric_depth, size=padded.shape[-2:], mode='bicubic', align_corners=False)
    assert torch.allclose(out.metric_depth, up[..., ph:-ph, pw:-pw], rtol=0, atol=1e-12)
    assert out.metric_depth.shape == (1, 1, 50, 70) and out.route == ['nyu']
    flip = model.infer(img, with_flip_aug=True)
    mirrored = model.infer(img.flip(-1)).metric_depth.flip(-1)
    assert torch.allclose(flip.metric_depth, (out.metric_depth + mirrored) / 2, rtol=0, atol=1e-12)
    assert not torch.allclose(flip.metric_depth, out.metric_depth)
    no_pad = model.infer(img, pad_input=False)
    assert no_pad.metric_depth.shape == (1, 1, 50, 70)
    with pytest.raises(ValueError, match='B, 3, H, W'):
        model.infer(img[0])


def test_nk_infer_routes_per_image_and_forces():
    model = _mini_model('NK').double()
    torch.manual_seed(1)
    imgs = torch.rand(2, 3, 64, 96, dtype=torch.float64)
    out = model.infer(imgs, pad_input=False, domain=[None, 'indoor'])
    assert out.route_probs.shape == (2, 2) and len(out.route) == 2 and out.route[1] == 'nyu'
    assert torch.allclose(out.route_probs.sum(-1), torch.ones(2, dtype=torch.float64))
    for i, dom in enumerate((None, 'indoor')):
        single = model.infer(imgs[i:i + 1], pad_input=False, domain=dom)
        assert single.route == out.route[i:i + 1]
        assert torch.allclose(single.metric_depth, out.metric_depth[i:i + 1], rtol=1e-12, atol=0)
    forced = model.infer(imgs, domain='outdoor', pad_input=False)
    assert forced.route == ['kitti'] * 2 and forced.route_index.tolist() == [1, 1]
    both = model(imgs, all_heads=True)
    assert torch.allclose(forced.metric_depth, both.metric_depth_by_head['kitti'], rtol=1e-12, atol=0)


def test_head_widths_are_configurable_and_checked():
    cfg = ZoeDepthHeadConfig.n(btlnck_channels=24, block_channels=(24, 24, 24, 24), out_conv_channels=8)
    head = ZoeDepthHead(cfg)
    again = ZoeDepthHead.from_state_dict(head.state_dict())
    assert again.config == cfg
    rel = torch.rand(1, 64, 96)
    feats = [torch.rand(1, 8, 64, 96)] + [torch.randn(1, 24, 64 // s, 96 // s) for s in (32, 16, 8, 4, 2)]
    assert head(rel, feats).metric_depth.shape == (1, 1, 64, 96)
    with pytest.raises(ValueError, match='channels'):
        ZoeDepth(MidasCore(BeitDPTConfig.mini()), cfg)
    with pytest.raises(ValueError):
        replace(cfg, n_attractors=(16, 8))
