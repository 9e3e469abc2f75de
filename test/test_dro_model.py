"""Behaviour of the DRO network on small random inputs (random, seeded weights; no reference data)."""

from __future__ import annotations

import pytest
import torch

from dro_depth.models.dro import DROInputError, DRONet, build_dro, stage_lengths
from dro_depth.models.update_blocks import PoseEncoder, PoseHead, SepConvGRU
from dro_depth.models.upsample import convex_upsample
from dro_depth.models.feature_warp import euler_to_rotation

H, W = 64, 96


def _inputs(b: int = 1, n: int = 2, dtype=torch.float64, seed: int = 0, size: tuple[int, int] = (H, W)):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(b, 3, *size, generator=g, dtype=dtype)
    refs = (target.unsqueeze(1) + 0.05 * torch.randn(b, n, 3, *size, generator=g, dtype=dtype)).clamp(0, 1)
    K = torch.tensor([[60.0, 0.0, 47.5], [0.0, 62.0, 31.5], [0.0, 0.0, 1.0]], dtype=dtype)
    return target, refs, K.expand(b, 3, 3).clone()


@pytest.fixture(scope='module')
def model64() -> DRONet:
    """Hidden-64 variant in float64 (cheap); the hidden-128 variant is covered by the reference tests."""
    return build_dro(64, seed=0, dtype=torch.float64).eval()


@pytest.fixture(scope='module')
def model32() -> DRONet:
    return build_dro(64, seed=0, dtype=torch.float32).eval()


def test_stage_lengths():
    assert stage_lengths(12) == [4, 4, 4]
    assert stage_lengths(2) == [2]
    assert stage_lengths(7) == [4, 3]
    assert stage_lengths(0) == []
    assert stage_lengths(5, 2) == [2, 2, 1]


@pytest.mark.parametrize('iterations', [0, 2, 7])
def test_iteration_counts_and_shapes(model64, iterations):
    target, refs, K = _inputs()
    with torch.inference_mode():
        out = model64(target, refs, K, iterations=iterations)
        assert out.inv_depth.shape == (1, 1, H, W)
        assert out.poses.shape == (1, 2, 6)
        assert len(out.inv_depth_iters) == iterations + 1
        assert len(out.poses_iters) == iterations + 1
        assert len(out.inv_depth_lowres_iters) == iterations + 1
        assert all(x.shape == (1, 1, H, W) for x in out.inv_depth_iters)
        assert all(p.shape == (1, 2, 6) for p in out.poses_iters)
        assert out.inv_depth_lowres.shape == (1, 1, H // 8, W // 8)
        assert out.inv_depth_iters[-1] is out.inv_depth
        assert torch.equal(out.poses_iters[-1], out.poses)
    if iterations == 0:
        assert out.confidence is None and out.hidden is None
        # initial head: sigmoid values, convex upsampling keeps them in (0, 1)
        assert 0 < out.inv_depth.min() and out.inv_depth.max() < 1
    else:
        assert out.confidence.shape == (1, 1, H, W)
        assert 0 <= out.confidence.min() and out.confidence.max() <= 1
        assert out.hidden.shape == (1, 64, H // 8, W // 8)
        assert not torch.equal(out.poses_iters[0], out.poses)


def test_stage_prefix_property(model64):
    """8 iterations are the first 8 steps of 12; 7 = [4, 3] is the first 7 steps of 8 = [4, 4]
    (within a stage, depth steps use the stage-start poses and pose steps the stage-start depth)."""
    target, refs, K = _inputs()
    with torch.inference_mode():
        o12 = model64(target, refs, K, iterations=12)
        o8 = model64(target, refs, K, iterations=8)
        o7 = model64(target, refs, K, iterations=7)
        for i in range(9):
            assert torch.equal(o8.poses_iters[i], o12.poses_iters[i])
            assert torch.equal(o8.inv_depth_lowres_iters[i], o12.inv_depth_lowres_iters[i])
            assert torch.allclose(o8.inv_depth_iters[i], o12.inv_depth_iters[i], atol=1e-12, rtol=0)
        for i in range(8):
            assert torch.equal(o7.poses_iters[i], o8.poses_iters[i])
            assert torch.equal(o7.inv_depth_lowres_iters[i], o8.inv_depth_lowres_iters[i])
        assert not torch.equal(o7.poses, o8.poses)


def test_batch_consistency(model64):
    target, refs, K = _inputs(b=2, seed=1)
    K[1, 0, 0] = 70.0  # per-sample intrinsics
    with torch.inference_mode():
        both = model64(target, refs, K, iterations=5)
        for i in range(2):
            one = model64(target[i:i + 1], refs[i:i + 1], K[i:i + 1], iterations=5)
            assert torch.allclose(both.inv_depth[i:i + 1], one.inv_depth, atol=1e-10, rtol=0)
            assert torch.allclose(both.poses[i:i + 1], one.poses, atol=1e-10, rtol=0)
            for a, c in zip(both.inv_depth_iters, one.inv_depth_iters):
                assert torch.allclose(a[i:i + 1], c, atol=1e-10, rtol=0)


@pytest.mark.parametrize('n', [1, 4])
def test_reference_counts(model64, n):
    target, refs, K = _inputs(n=n, seed=n)
    with torch.inference_mode():
        out = model64(target, refs, K, iterations=3)
        out_list = model64(target, list(refs.unbind(1)), K[0], iterations=3)  # list + [3,3] K
    assert out.poses.shape == (1, n, 6)
    assert torch.isfinite(out.inv_depth).all() and torch.isfinite(out.poses).all()
    assert torch.allclose(out.inv_depth, out_list.inv_depth, atol=1e-12, rtol=0)
    assert torch.allclose(out.poses, out_list.poses, atol=1e-12, rtol=0)


def test_cached_reference_features(model64):
    target, refs, K = _inputs(n=2, seed=9)
    with torch.inference_mode():
        direct = model64(target, refs, K, iterations=3)
        feats = model64.features(refs[0]).unsqueeze(0)  # [B=1,N=2,128,h,w]
        cached = model64(target, refs, K, iterations=3, ref_features=feats)
    assert torch.allclose(direct.inv_depth, cached.inv_depth, atol=1e-10, rtol=0)
    assert torch.allclose(direct.poses, cached.poses, atol=1e-10, rtol=0)
    with pytest.raises(DROInputError, match='ref_features'):
        model64(target, refs, K, iterations=1, ref_features=feats[:, :1])


def test_reference_order_permutes_poses(model64):
    target, refs, K = _inputs(n=3, seed=5)
    perm = [2, 0, 1]
    with torch.inference_mode():
        a = model64(target, refs, K, iterations=4)
        b = model64(target, refs[:, perm], K, iterations=4)
    assert torch.allclose(a.poses[:, perm], b.poses, atol=1e-10, rtol=0)
    assert torch.allclose(a.inv_depth, b.inv_depth, atol=1e-10, rtol=0)


def test_float32_agrees_with_float64(model64, model32):
    target, refs, K = _inputs()
    with torch.inference_mode():
        o64 = model64(target, refs, K, iterations=6)
        o32 = model32(target.float(), refs.float(), K.float(), iterations=6)
    assert o32.inv_depth.dtype == torch.float32
    assert (o32.inv_depth.double() - o64.inv_depth).abs().max() < 1e-4
    assert (o32.poses.double() - o64.poses).abs().max() < 1e-4


@pytest.mark.parametrize('bad, match', [
    (dict(target=torch.rand(1, 3, 60, 96)), 'multiples of 16'),
    (dict(target=torch.rand(1, 3, 64, 88)), 'multiples of 16'),
    (dict(target=torch.rand(3, 64, 96)), r'\[B,3,H,W\]'),
    (dict(refs=torch.rand(1, 3, 64, 96)), r'\[B,N,3,H,W\]'),
    (dict(refs=torch.rand(1, 0, 3, 64, 96)), r'\[B,N,3,H,W\]'),
    (dict(refs=[]), 'at least one'),
    (dict(refs=[torch.rand(1, 3, 32, 96)]), 'target shape'),
    (dict(K=torch.eye(4)), 'K must be'),
    (dict(K=torch.zeros(3, 3)), 'positive focal'),
    (dict(K=torch.eye(3).expand(2, 3, 3)), 'K must be'),
    (dict(iterations=-1), 'iterations'),
    (dict(iterations=2.5), 'iterations'),
    (dict(iterations=True), 'iterations'),
    (dict(target=torch.randint(0, 255, (1, 3, 64, 96))), 'floating'),
])
def test_bad_inputs(model32, bad, match):
    model = model32
    target, refs, K = _inputs(dtype=torch.float32)
    args = dict(target=target, refs=refs, K=K, iterations=1)
    args.update(bad)
    with pytest.raises(DROInputError, match=match):
        model(**args)
    assert issubclass(DROInputError, ValueError)


def test_timings_filled(model32):
    model = model32
    target, refs, K = _inputs(dtype=torch.float32, size=(32, 48))
    timings: dict[str, float] = {}
    with torch.inference_mode():
        model(target, refs, K, iterations=5, timings=timings)
    assert set(timings) == {'features', 'init', 'context', 'gru_stage_0', 'gru_stage_1', 'upsample'}
    assert all(v >= 0 for v in timings.values())


def test_training_mode_gradients_and_frozen_batchnorm():
    model = build_dro(64, seed=3).train()
    target, refs, K = _inputs(dtype=torch.float32, size=(32, 48))
    bn = model.fnet.bn1
    stats = (bn.running_mean.clone(), bn.running_var.clone())
    out = model(target, refs, K, iterations=2)
    loss = out.inv_depth_iters[-1].mean() + out.inv_depth_iters[1].mean() + out.poses.abs().sum()
    loss.backward()
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    for name in ('update_block_depth.depth_gru.convz1.weight', 'update_block_pose.encoder.convp1.weight',
                 'update_block_depth.mask.0.weight', 'fnet.conv1.weight', 'cnet_pose.bn1.weight'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    # BatchNorm uses running statistics in train mode too: train and eval outputs agree
    with torch.no_grad():
        a = model(target, refs, K, iterations=2).inv_depth
        b = model.eval()(target, refs, K, iterations=2).inv_depth
    assert torch.equal(a, b)


def test_out_normalize_range():
    model = build_dro(64, seed=0, out_normalize=True, min_depth=0.5, max_depth=10.0).eval()
    target, refs, K = _inputs(dtype=torch.float32)
    with torch.inference_mode():
        out = model(target, refs, K, iterations=0)
    assert out.inv_depth.min() > 1 / 10.0 and out.inv_depth.max() < 1 / 0.5
    assert model.version == 'it12-out'


def test_fast_paths_equal_reference_formulations():
    torch.manual_seed(0)
    dt = torch.float64
    gru = SepConvGRU(64, 96).to(dt)
    h = torch.tanh(torch.randn(2, 64, 5, 7, dtype=dt))
    ctx = torch.relu(torch.randn(2, 32, 5, 7, dtype=dt))
    enc = torch.randn(2, 64, 5, 7, dtype=dt)
    ref = gru(h, torch.cat([ctx, enc], 1))
    assert torch.allclose(gru.step(h, enc, gru.prepare(ctx)), ref, atol=1e-13, rtol=0)

    penc = PoseEncoder(128, 64, 64).to(dt)
    pose, cost = torch.randn(3, 6, dtype=dt), torch.rand(3, 128, 5, 7, dtype=dt)
    assert torch.allclose(penc(pose, cost, penc.pose_basis(5, 7)), penc(pose, cost), atol=1e-12, rtol=0)

    head = PoseHead(256, 128).to(dt)
    f_tgt, f_ref = torch.randn(2, 128, 5, 7, dtype=dt), torch.randn(6, 128, 5, 7, dtype=dt)
    expected = head(torch.cat([f_tgt.repeat(3, 1, 1, 1), f_ref], 1))
    assert torch.allclose(head.forward_pairs(f_tgt, f_ref), expected, atol=1e-12, rtol=0)


def test_convex_upsample_and_rotation_conventions():
    x = torch.arange(6, dtype=torch.float64).view(1, 1, 2, 3)
    # all weight on the centre neighbour (k = 4) reproduces nearest-neighbour upsampling
    mask = torch.full((1, 9, 8, 8, 2, 3), -1e9, dtype=torch.float64)
    mask[:, 4] = 0
    up = convex_upsample(x, mask.view(1, 576, 2, 3))
    assert torch.equal(up, x.repeat_interleave(8, 2).repeat_interleave(8, 3))
    # R = Rx @ Ry @ Rz
    rz = euler_to_rotation(torch.tensor([[0.0, 0.0, 0.3]], dtype=torch.float64))[0]
    angle = torch.tensor(0.3, dtype=torch.float64)
    c, s = torch.cos(angle), torch.sin(angle)
    assert torch.allclose(rz, torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float64))
    a = torch.tensor([[0.1, -0.2, 0.3]], dtype=torch.float64)
    rx = euler_to_rotation(torch.tensor([[0.1, 0, 0]], dtype=torch.float64))
    ry = euler_to_rotation(torch.tensor([[0, -0.2, 0]], dtype=torch.float64))
    rz = euler_to_rotation(torch.tensor([[0, 0, 0.3]], dtype=torch.float64))
    assert torch.allclose(euler_to_rotation(a), rx @ ry @ rz, atol=1e-15)


def test_lazy_iterations_outside_inference_mode(model64):
    target, refs, K = _inputs()
    with torch.inference_mode():
        out = model64(target, refs, K, iterations=3)
    iters = out.inv_depth_iters  # computed later, outside inference mode
    with torch.inference_mode():
        eager = model64(target, refs, K, iterations=3).inv_depth_iters
    assert len(iters) == 4
    for a, b in zip(iters, eager):
        assert torch.equal(a, b)
