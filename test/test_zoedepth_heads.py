"""ZoeDepth metric heads + NK router against the official float64 outputs (zoe_head_N.pt / zoe_head_NK.pt)."""

import pytest
import torch

from reference_data import reference_dir
from dro_depth.models.metric import ZoeDepthHead, ZoeDepthHeadConfig
from dro_depth.models.metric.attractors import inv_attractor
from dro_depth.models.metric import router
from dro_depth.models.metric.log_binomial import LogBinomial

REF = reference_dir('zoedepth')
needs_ref = pytest.mark.skipif(not (REF / 'zoe_head_N.pt').is_file(),
                               reason=f'ZoeDepth reference data not found in {REF} (set DRO_DEPTH_REFERENCE)')

# The 64 float32 encoding frequencies (bit patterns) of the machine that made zoe_head_NK.pt. float32 exp is
# not correctly rounded: three of the values lie within 0.02 ulp of a rounding midpoint (indices 6, 22, 53)
# and MKL's exp on some CPUs (AMD EPYC here) rounds them the other way, moving domain_logits by 6.4e-8. The
# official PatchTransformerEncoder gives bit-identical results to ours on such a CPU.
REFERENCE_MACHINE_FREQUENCY_BITS = [
    1065353216, 1063104470, 1061157137, 1059470816, 1058010522, 1056527310, 1054337178, 1052440603, 1050798235,
    1049376003, 1047712802, 1045579757, 1043732615, 1042133055, 1040747895, 1038909397, 1036831948, 1035032952,
    1033475085, 1032126028, 1030116801, 1028093504, 1026341398, 1024824136, 1023510242, 1021334737, 1019364174,
    1017657737, 1016180025, 1014779184, 1012562929, 1010643726, 1008981770, 1007542574, 1005959597, 1003801109,
    1001931930, 1000313292, 998911605, 997151245, 995049011, 993228557, 991652109, 990286957, 988353832,
    986306393, 984533390, 982998027, 981668462, 979567075, 977573002, 975846212, 974350868, 973033388, 970790689,
    968848598, 967166817, 965710453, 964208653, 962024418, 960132947, 958495001, 957076589, 955395293]


@pytest.fixture(scope='module', autouse=True)
def reference_machine_exp():
    """Run the router with the reference machine's float32 frequencies where this CPU's exp rounds the
    near-midpoint ones differently; everything else (the network, the formula) is the code under test."""
    pinned = torch.tensor(REFERENCE_MACHINE_FREQUENCY_BITS, dtype=torch.int32).view(torch.float32)
    here = router.encoding_frequencies(128)
    ulps = (here.view(torch.int32).long() - pinned.view(torch.int32).long()).abs()
    # A wrong formula would differ by far more than one ulp, or at far more than three places.
    assert int(ulps.max()) <= 1 and int((ulps > 0).sum()) <= 3, ulps
    original = router.encoding_frequencies
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(router, 'encoding_frequencies',
                   lambda dim, device=None: pinned.to(device) if dim == 128 else original(dim, device))
        yield


def rel_err(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def _load(name):
    return torch.load(REF / f'zoe_head_{name}.pt', weights_only=True)


def _inputs(ref, dtype):
    rel = ref['inputs']['rel_depth'].to(dtype)
    feats = [f.to(dtype).clone() for f in ref['inputs']['features']]
    return rel, feats


@pytest.fixture(scope='module')
def ref_n():
    return _load('N')


@pytest.fixture(scope='module')
def ref_nk():
    return _load('NK')


@pytest.fixture(scope='module')
def out_n64(ref_n):
    head = ZoeDepthHead.from_state_dict(ref_n['state_dict']).to(torch.float64).eval()
    rel, feats = _inputs(ref_n, torch.float64)
    with torch.no_grad():
        return head(rel, feats, return_probs=True, return_intermediates=True)


@pytest.fixture(scope='module')
def nk_head64(ref_nk):
    return ZoeDepthHead.from_state_dict(ref_nk['state_dict']).to(torch.float64).eval()


@pytest.fixture(scope='module')
def out_nk64(ref_nk, nk_head64):
    rel, feats = _inputs(ref_nk, torch.float64)
    with torch.no_grad():
        return nk_head64(rel, feats, return_probs=True, return_intermediates=True, all_heads=True)


@needs_ref
def test_n_config_inferred_from_keys(ref_n):
    head = ZoeDepthHead.from_state_dict(ref_n['state_dict'])
    cfg = head.config
    assert cfg == ZoeDepthHeadConfig.n()
    eff = ref_n['config']['effective_modules']
    assert cfg.seed_mlp_dim == eff['seed_bin_regressor']['mlp_dim']
    assert [a['n_attractors'] for a in eff['attractors']] == list(cfg.n_attractors)
    assert cfg.clb_in_channels == eff['conditional_log_binomial']['in_channels']
    assert all(a.alpha == 300.0 and a.gamma == 2 for a in head.attractors)
    assert head.conditional_log_binomial.log_binomial_transform.k_idx.dtype == torch.int64


@needs_ref
def test_n_float64_matches_official(ref_n, out_n64):
    assert out_n64.metric_depth.shape == (1, 1, 384, 512)
    assert rel_err(out_n64.metric_depth, ref_n['metric_depth']) <= 1e-12
    assert rel_err(out_n64.bin_centers[..., ::16, ::16], ref_n['bin_centers']) <= 1e-12
    assert rel_err(out_n64.probs[..., ::16, ::16], ref_n['probs']) <= 1e-12
    assert out_n64.route == ['nyu'] and out_n64.route_index.tolist() == [0]
    assert out_n64.domain_logits is None and out_n64.route_probs is None


@needs_ref
def test_n_intermediates_match(ref_n, out_n64):
    it, mine = ref_n['intermediates'], out_n64.intermediates
    assert rel_err(mine['seed_bin_centers'], it['seed_bin_centers']) <= 1e-12
    for s, a, b in zip(it['attractor_subsample'], mine['attractor_bin_centers'], it['attractor_bin_centers']):
        assert rel_err(a[..., ::s, ::s], b) <= 1e-12
    assert rel_err(mine['clb_p'][..., ::16, ::16], it['clb_p']) <= 1e-12
    assert rel_err(mine['clb_t'][..., ::16, ::16], it['clb_t']) <= 1e-12


@needs_ref
def test_n_float32_within_tolerance(ref_n):
    head = ZoeDepthHead.from_state_dict(ref_n['state_dict']).eval()
    rel, feats = _inputs(ref_n, torch.float32)
    with torch.no_grad():
        out = head(rel, feats)
    assert out.metric_depth.dtype == torch.float32
    err = rel_err(out.metric_depth, ref_n['metric_depth'])
    assert 0 < err <= 1e-4


@needs_ref
def test_nk_config_inferred_from_keys(ref_nk, nk_head64):
    cfg = nk_head64.config
    assert cfg == ZoeDepthHeadConfig.nk()
    assert cfg.multi_head and nk_head64.domain_names == ['nyu', 'kitti']
    for n in ('nyu', 'kitti'):
        assert [a.n_attractors for a in nk_head64.attractors[n]] == [16, 16, 16, 16]
    assert all(a.memory_efficient for a in nk_head64.attractors['nyu'])


@needs_ref
def test_nk_float64_matches_official(ref_nk, out_nk64):
    assert out_nk64.route == [ref_nk['route']] == ['kitti']
    assert out_nk64.route_index.tolist() == [1]
    assert (out_nk64.domain_logits - ref_nk['domain_logits']).abs().max() <= 1e-12
    softmax = torch.softmax(ref_nk['domain_logits'], -1)
    assert torch.allclose(out_nk64.route_probs, softmax, rtol=0, atol=1e-12)
    # Batch of one: the per-image route equals the official batch vote.
    assert torch.allclose(out_nk64.route_probs, ref_nk['domain_vote'], rtol=0, atol=1e-12)
    assert rel_err(out_nk64.metric_depth, ref_nk['metric_depth']) <= 1e-12
    assert rel_err(out_nk64.bin_centers[..., ::16, ::16], ref_nk['bin_centers']) <= 1e-12
    assert rel_err(out_nk64.probs[..., ::16, ::16], ref_nk['probs']) <= 1e-12
    tok = out_nk64.intermediates['class_token_embedding']
    assert rel_err(tok, ref_nk['intermediates']['class_token_embedding']) <= 1e-12
    for name in ('nyu', 'kitti'):
        assert rel_err(out_nk64.metric_depth_by_head[name], ref_nk['metric_depth_by_head'][name]) <= 1e-12


@needs_ref
def test_nk_forced_domain_matches_official_heads(ref_nk, nk_head64):
    rel, feats = _inputs(ref_nk, torch.float64)
    with torch.no_grad():
        indoor = nk_head64(rel, feats, domain='indoor')
    assert indoor.route == ['nyu'] and indoor.route_index.tolist() == [0]
    assert rel_err(indoor.metric_depth, ref_nk['metric_depth_by_head']['nyu']) <= 1e-12
    # The router still runs and reports its (unforced) opinion.
    assert (indoor.domain_logits - ref_nk['domain_logits']).abs().max() <= 1e-12
    # The two heads really differ on this input, so forcing is observable.
    assert rel_err(ref_nk['metric_depth_by_head']['nyu'], ref_nk['metric_depth_by_head']['kitti']) > 0.1


@needs_ref
def test_nk_float32_within_tolerance(ref_nk):
    head = ZoeDepthHead.from_state_dict(ref_nk['state_dict']).eval()
    rel, feats = _inputs(ref_nk, torch.float32)
    with torch.no_grad():
        out = head(rel, feats)
    assert out.route == ['kitti']
    assert rel_err(out.metric_depth, ref_nk['metric_depth']) <= 1e-4
    assert (out.domain_logits.double() - ref_nk['domain_logits']).abs().max() <= 1e-5


def _crop(rel, feats, y, x, size=(192, 256)):
    """Consistent crop of rel_depth and the six feature maps (strides 1, 32, 16, 8, 4, 2) at pixel (y, x)."""
    out = []
    for f, s in zip(feats, (1, 32, 16, 8, 4, 2)):
        out.append(f[..., y // s:(y + size[0]) // s, x // s:(x + size[1]) // s])
    return rel[..., y:y + size[0], x:x + size[1]], out


@needs_ref
def test_nk_routes_each_image_on_its_own(ref_nk, nk_head64):
    """A batch mixing an outdoor-routed and an indoor-routed input equals running each alone."""
    rel, feats = _inputs(ref_nk, torch.float64)
    rel_a, feats_a = _crop(rel, feats, 0, 0)
    rel_b, feats_b = _crop(rel, feats, 0, 256)
    feats_b[1] = feats_b[1].roll(1, dims=1)  # this input routes to nyu
    rel_ab = torch.cat([rel_a, rel_b])
    feats_ab = [torch.cat([a, b]) for a, b in zip(feats_a, feats_b)]
    with torch.no_grad():
        alone_a = nk_head64(rel_a, feats_a)
        alone_b = nk_head64(rel_b, feats_b)
        both = nk_head64(rel_ab, feats_ab)
        swapped = nk_head64(rel_ab, feats_ab, domain=['indoor', 'kitti'])
    assert alone_a.route == ['kitti'] and alone_b.route == ['nyu']
    assert both.route == ['kitti', 'nyu'] and both.route_index.tolist() == [1, 0]
    assert both.route_probs.shape == (2, 2) and both.domain_logits.shape == (2, 2)
    for i, alone in enumerate((alone_a, alone_b)):
        assert both.metric_depth[i:i + 1].shape == (1, 1, 192, 256)
        assert rel_err(both.metric_depth[i:i + 1], alone.metric_depth) <= 1e-12
        assert (both.domain_logits[i:i + 1] - alone.domain_logits).abs().max() <= 1e-12
    assert swapped.route == ['nyu', 'kitti']
    assert rel_err(swapped.metric_depth, both.metric_depth) > 1e-3


@needs_ref
def test_head_rejects_bad_inputs(ref_n):
    head = ZoeDepthHead.from_state_dict(ref_n['state_dict'])
    rel, feats = _inputs(ref_n, torch.float32)
    with pytest.raises(ValueError, match='features'):
        head(rel, feats[:5])
    with pytest.raises(ValueError, match='l4_rn'):
        head(rel, [feats[0], feats[1][:, :128]] + feats[2:])
    with pytest.raises(ValueError, match='domain'):
        head(rel, feats, domain='underwater')
    with pytest.raises(ValueError, match='core'):
        ZoeDepthHead.from_state_dict({'core.core.x': torch.zeros(1), **ref_n['state_dict']})


def test_attractor_and_log_binomial_formulas():
    dx = torch.tensor([0.0, 0.1, -0.2], dtype=torch.float64)
    assert torch.allclose(inv_attractor(dx), dx / (1 + 300 * dx ** 2), rtol=0, atol=0)
    lb = LogBinomial(64).double()
    p = torch.tensor([0.3, 1e-6], dtype=torch.float64).view(1, 1, 2)
    t = torch.tensor([0.5, 2.0], dtype=torch.float64).view(1, 1, 1, 2)
    probs = lb(p, t)[0, :, 0]
    # Manifest: L_k = n log n - k' log k' - (n-k') log(n-k'+1e-7), n = 63+1e-7, k' = k+1e-7; p clamped.
    k = torch.arange(64, dtype=torch.float64)
    n, kk = 63 + 1e-7, k + 1e-7
    n_log_n = n * torch.log(torch.tensor(n, dtype=torch.float64))
    big_l = n_log_n - kk * torch.log(kk) - (n - kk) * torch.log(n - kk + 1e-7)
    # p = 1e-6 is clamped to 1e-4 (its complement 1 - 1e-6 is not).
    for j, (pj, qj, tj) in enumerate(((0.3, 0.7, 0.5), (1e-4, 1 - 1e-6, 2.0))):
        logit = big_l + k * torch.log(torch.tensor(pj, dtype=torch.float64)) + (63 - k) * torch.log(
            torch.tensor(qj, dtype=torch.float64))
        assert torch.allclose(probs[:, j], torch.softmax(logit / tj, 0), rtol=0, atol=1e-14)
    assert int(probs[:, 0].argmax()) == round(0.3 * 63)


def test_k_head_normed_bins_are_bounded_and_sorted():
    torch.manual_seed(0)
    cfg = ZoeDepthHeadConfig.k(btlnck_channels=16, block_channels=(16,) * 4, bin_embedding_dim=16,
                               seed_mlp_dim=16, seed_projector_mlp_dim=16, projector_mlp_dim=16,
                               attractor_mlp_dim=16, n_bins=16)
    head = ZoeDepthHead(cfg).double().eval()
    again = ZoeDepthHead.from_state_dict(head.state_dict())
    assert again.config == cfg and again.attractors[0]._net[2].out_channels == 32
    rel = torch.rand(2, 64, 96, dtype=torch.float64)
    feats = [torch.rand(2, 32, 64, 96, dtype=torch.float64)] + [
        torch.randn(2, 16, 64 // s, 96 // s, dtype=torch.float64) for s in (32, 16, 8, 4, 2)]
    with torch.no_grad():
        out = head(rel, feats, return_probs=True, return_intermediates=True)
    assert out.route == ['kitti', 'kitti'] and out.route_index.tolist() == [1, 1]
    seed = out.intermediates['seed_bin_centers']
    assert (seed > 1e-3).all() and (seed < 80).all() and (seed.diff(dim=1) > 0).all()
    for stage in out.intermediates['attractor_bin_centers']:
        assert (stage >= 1e-3).all() and (stage <= 80).all() and (stage.diff(dim=1) >= 0).all()
    assert torch.allclose(out.probs.sum(1), torch.ones(2, 64, 96, dtype=torch.float64))
    assert (out.metric_depth > 1e-3).all() and (out.metric_depth < 80).all()
