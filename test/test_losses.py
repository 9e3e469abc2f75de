"""Training losses on real tensors with known answers."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dro_depth.training.losses import (edge_aware_smoothness, photometric_error, pose_reprojection_loss,
                                       scale_shift_invariant_loss, self_supervised_loss, sequence_weights, silog_loss,
                                       supervised_inv_depth_loss)

F_PX, Z, SHIFT = 100.0, 2.0, 4


def _plane_pair(h=48, w=64, seed=0):
    """A textured fronto-parallel plane at depth Z seen before and after a sideways move of SHIFT px."""
    rng = np.random.default_rng(seed)
    tex = rng.uniform(0, 1, (3, h // 4, (w + SHIFT) // 4 + 1))
    tex = torch.nn.functional.interpolate(torch.from_numpy(tex)[None], scale_factor=4, mode='bilinear')[0]
    tex = tex[:, :h, :w + SHIFT].double()
    target = tex[:, :, :w]
    ref = torch.zeros_like(target)
    ref[:, :, SHIFT:] = target[:, :, :-SHIFT]
    ref[:, :, :SHIFT] = tex[:, :, w:w + SHIFT].flip(-1)  # unseen strip, anything
    K = torch.tensor([[F_PX, 0, w / 2], [0, F_PX, h / 2], [0, 0, 1.0]], dtype=torch.float64)
    tx = SHIFT * Z / F_PX  # u_ref = u_tgt + f tx / Z
    return target[None], ref[None, None], K[None], tx


def test_sequence_weights_decay_toward_early_steps():
    w = sequence_weights(5, 0.8)
    assert w[-1] == 1.0 and all(a < b for a, b in zip(w, w[1:]))


def test_supervised_inverse_depth_l1():
    gt = torch.full((1, 1, 8, 8), 2.0)
    gt[0, 0, 0, 0] = float('nan')
    perfect = 1.0 / gt.nan_to_num(1.0)
    assert supervised_inv_depth_loss([perfect], gt).item() == pytest.approx(0.0, abs=1e-7)
    loss = supervised_inv_depth_loss([perfect + 0.1, perfect + 0.1], gt, gamma=0.5)
    assert loss.item() == pytest.approx(0.1 * 1.5, rel=1e-5)
    assert torch.isfinite(loss)


def test_pose_reprojection_zero_at_truth_and_grows():
    depth = torch.full((1, 1, 32, 32), 3.0, dtype=torch.float64)
    K = torch.tensor([[[50.0, 0, 16], [0, 50, 16], [0, 0, 1]]], dtype=torch.float64)
    vec = torch.tensor([[[0.1, 0.0, 0.05, 0.01, 0.02, 0.0]]], dtype=torch.float64)
    from dro_depth.geometry import pose_vec_to_matrix
    T = pose_vec_to_matrix(vec)
    assert pose_reprojection_loss([vec], T, depth, K).item() < 1e-9
    small = pose_reprojection_loss([vec + 0.01], T, depth, K).item()
    big = pose_reprojection_loss([vec + 0.05], T, depth, K).item()
    assert 0 < small < big


def test_photometric_loss_prefers_true_geometry():
    target, refs, K, tx = _plane_pair()
    true = SimpleNamespace(inv_depth_iters=[torch.full((1, 1, 48, 64), 1 / Z, dtype=torch.float64)],
                           poses_iters=[torch.tensor([[[tx, 0, 0, 0, 0, 0]]], dtype=torch.float64)])
    wrong_depth = SimpleNamespace(inv_depth_iters=[torch.full((1, 1, 48, 64), 1 / (2 * Z), dtype=torch.float64)],
                                  poses_iters=true.poses_iters)
    wrong_pose = SimpleNamespace(inv_depth_iters=true.inv_depth_iters,
                                 poses_iters=[torch.tensor([[[-tx, 0, 0, 0, 0, 0]]], dtype=torch.float64)])
    l_true = self_supervised_loss(true, target, refs, K, automask=False)
    l_d = self_supervised_loss(wrong_depth, target, refs, K, automask=False)
    l_p = self_supervised_loss(wrong_pose, target, refs, K, automask=False)
    assert l_true['photometric'] < 0.01
    assert l_d['photometric'] > 5 * l_true['photometric']
    assert l_p['photometric'] > 5 * l_true['photometric']
    # Auto-mask: a static "reference" equal to the target masks every pixel out of the loss.
    static = self_supervised_loss(true, target, target[:, None], K, automask=True)
    assert static['automask_ratio'] < 0.05


def test_photometric_error_and_smoothness_shapes():
    a = torch.rand(2, 3, 16, 16)
    e = photometric_error(a, a)
    assert e.shape == (2, 1, 16, 16) and e.abs().max() < 1e-6
    flat = torch.ones(1, 1, 16, 16)
    assert edge_aware_smoothness(flat, a[:1]).item() == pytest.approx(0.0)
    assert edge_aware_smoothness(torch.rand(1, 1, 16, 16), a[:1]).item() > 0


def test_silog_and_ssi():
    gt = torch.rand(2, 1, 8, 8) + 0.5
    assert silog_loss(gt, gt).item() == pytest.approx(0.0, abs=1e-4)
    assert silog_loss(2 * gt, gt, lam=1.0).item() == pytest.approx(0.0, abs=1e-3)
    assert silog_loss(2 * gt, gt).item() > 1.0
    assert scale_shift_invariant_loss(3 * gt + 1, gt).item() == pytest.approx(0.0, abs=1e-5)
    assert scale_shift_invariant_loss(torch.rand(2, 1, 8, 8), gt).item() > 0.1
