"""DRO network vs the official aliyun/dro-sfm outputs stored in shared/reference/dro."""

from __future__ import annotations


import pytest
import torch

from reference_data import reference_dir
from dro_depth.models.dro import load_dro
from dro_depth.models.feature_warp import FeatureWarper, euler_to_rotation, inv_depth_to_depth




REF = reference_dir('dro')
CKPT = REF / 'dro_official_it12h.pt'
CASE = REF / 'dro_case_public.pt'
pytestmark = pytest.mark.skipif(not (CKPT.is_file() and CASE.is_file()),
                                reason=f'DRO reference data not found under {REF} (set DRO_DEPTH_REFERENCE)')


@pytest.fixture(scope='module')
def case() -> dict:
    return torch.load(CASE, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def model64():
    return load_dro(CKPT, device='cpu', dtype=torch.float64)


@pytest.fixture(scope='module')
def out64(model64, case):
    with torch.inference_mode():
        out = model64(case['target'], list(case['refs']), case['K'], iterations=12)
        out.inv_depth_iters  # materialise inside inference mode
    return out


def _maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.double() - b.double()).abs().max().item()


def test_case_layout(case):
    assert case['version'] == 'it12-h'
    assert case['inv_depth_per_iter'].shape[0] == 13
    assert case['poses_per_iter'].shape[2] == 13


def test_float64_every_step(out64, case):
    assert len(out64.inv_depth_iters) == 13
    assert len(out64.poses_iters) == 13
    for i in range(13):
        assert _maxdiff(out64.inv_depth_iters[i], case['inv_depth_per_iter'][i]) <= 1e-8, f'inv step {i}'
        assert _maxdiff(out64.poses_iters[i], case['poses_per_iter'][:, :, i]) <= 1e-8, f'pose step {i}'
        assert _maxdiff(out64.inv_depth_lowres_iters[i],
                        case['debug']['inv_depth_lowres_per_iter'][i]) <= 1e-8, f'low-res step {i}'
    assert _maxdiff(out64.inv_depth, case['inv_depth_final']) <= 1e-8
    assert _maxdiff(out64.poses, case['poses_final']) <= 1e-8
    # the official training-mode return holds the stage ends
    for s in range(4):
        assert _maxdiff(out64.inv_depth_iters[4 * s], case['inv_depth_per_stage'][s]) <= 1e-8
        assert _maxdiff(out64.poses_iters[4 * s], case['poses_per_stage'][:, :, s]) <= 1e-8


def test_float64_intermediates(model64, case):
    dbg = case['debug']
    target, refs = case['target'], list(case['refs'])
    hd = model64.hidden_dim
    with torch.inference_mode():
        fmaps = model64.fnet(torch.cat([target] + refs, dim=0))
        assert _maxdiff(fmaps, dbg['fmaps']) <= 1e-9
        assert _maxdiff(model64.cnet_depth(target), dbg['cnet_depth_raw']) <= 1e-9
        for n, ref in enumerate(refs):
            assert _maxdiff(model64.cnet_pose(torch.cat([target, ref], 1)), dbg['cnet_pose_raw'][n]) <= 1e-9
        assert _maxdiff(model64.upmask_net(fmaps[:1]), dbg['up_mask_init']) <= 1e-9
        assert hd == 128


def test_warp_costs_match_official(case):
    """Depth cost (mean over refs, poses P0) and per-reference pose cost at each stage start."""
    dbg = case['debug']
    f = dbg['fmaps']
    b = case['target'].shape[0]
    n = case['refs'].shape[0]
    f_tgt, f_ref = f[:b], f[b:]
    h, w = f.shape[-2:]
    warper = FeatureWarper(case['K'].double(), n, h, w, 1.0 / 8)
    for s in range(3):
        inv = dbg['inv_depth_lowres_per_iter'][4 * s]
        pose = case['poses_per_iter'][:, :, 4 * s].transpose(0, 1).reshape(n * b, 6)
        pts = warper.points(inv_depth_to_depth(inv).repeat(n, 1, 1, 1))
        warped = warper.warp(f_ref, pts, euler_to_rotation(pose[:, 3:]), pose[:, :3])
        cost = (f_tgt.repeat(n, 1, 1, 1) - warped) ** 2
        assert _maxdiff(cost.view(n, b, *cost.shape[1:]).mean(0), dbg['depth_cost_stage_start'][s]) <= 1e-9
        for r in range(n):
            assert _maxdiff(cost[r * b:(r + 1) * b], dbg['pose_cost_stage_start'][r, s]) <= 1e-9


def test_float32_every_step(case):
    model = load_dro(CKPT, device='cpu', dtype=torch.float32)
    with torch.inference_mode():
        out = model(case['target'].float(), case['refs'].float().transpose(0, 1), case['K'].float(),
                    iterations=12)
        for i in range(13):
            assert _maxdiff(out.inv_depth_iters[i], case['inv_depth_per_iter'][i]) <= 1e-4
            assert _maxdiff(out.poses_iters[i], case['poses_per_iter'][:, :, i]) <= 1e-4
    # close to the official float32 run as well
    assert _maxdiff(out.inv_depth, case['inv_depth_final_fp32_official']) <= 1e-4
    assert _maxdiff(out.poses, case['poses_final_fp32_official']) <= 1e-5
    assert out.inv_depth.dtype == torch.float32
