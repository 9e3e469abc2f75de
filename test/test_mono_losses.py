"""Losses and perturbations of the Depth Anything recipe (``model: mono``)."""
import numpy as np
import pytest
import torch

from dro_depth.training.mono_losses import (cutmix_loss, feature_alignment_loss, gradient_matching_loss,
                                            masked_median, ssi_loss, ssi_normalise, trimmed_mean)
from dro_depth.training.mono_perturb import colour_jitter, cutmix_boxes, gaussian_blur

F64 = torch.float64


@pytest.fixture
def scene():
    g = torch.Generator().manual_seed(0)
    target = 0.1 + torch.rand(3, 24, 32, generator=g, dtype=F64)           # inverse depth, positive
    pred = 0.1 + torch.rand(3, 24, 32, generator=g, dtype=F64)
    mask = torch.rand(3, 24, 32, generator=g, dtype=F64) > 0.2
    return pred, target, mask


def test_masked_median_is_the_lower_median_of_the_masked_values(scene):
    pred, _, mask = scene
    got = masked_median(pred, mask)
    for b in range(3):
        vals = np.sort(pred[b][mask[b]].numpy())
        assert got[b].item() == vals[(len(vals) - 1) // 2]


def test_ssi_normalisation_has_zero_median_and_unit_mean_absolute_deviation(scene):
    pred, _, mask = scene
    d = ssi_normalise(pred, mask)
    for b in range(3):
        v = d[b][mask[b]]
        assert abs(masked_median(d[b:b + 1], mask[b:b + 1]).item()) < 1e-12
        assert abs(v.abs().mean().item() - 1.0) < 1e-4


def test_ssi_loss_is_invariant_to_positive_scale_and_shift_only(scene):
    pred, target, mask = scene
    base = ssi_loss(pred, target, mask)
    assert base > 0.1
    for a, b in ((3.0, 0.0), (0.01, 5.0), (250.0, -7.0)):
        torch.testing.assert_close(ssi_loss(a * pred + b, target, mask), base, rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(ssi_loss(pred, a * target + b, mask), base, rtol=1e-6, atol=1e-9)
    # an affine copy of the target scores zero; a flipped one or a non-affine change does not
    assert ssi_loss(2.5 * target + 1.0, target, mask) < 1e-6
    assert ssi_loss(-2.5 * target + 1.0, target, mask) > 0.5
    assert ssi_loss(target ** 3, target, mask) > 0.05
    # values outside the mask do not matter
    junk = torch.where(mask, pred, torch.full_like(pred, 1e6))
    torch.testing.assert_close(ssi_loss(junk, target, mask), base)


def test_gradient_matching_is_zero_for_an_affine_copy_and_not_for_noise(scene):
    _, target, mask = scene
    assert gradient_matching_loss(4.0 * target + 0.3, target, mask) < 1e-6
    noisy = target + 0.05 * torch.randn(target.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    assert gradient_matching_loss(noisy, target, mask) > 0.05
    # 4 scales: a residual that only exists on the coarse grid (every 8th pixel) still counts
    coarse = target.clone()
    coarse[:, ::8, ::8] += 0.5
    one = gradient_matching_loss(coarse, target, mask, scales=1)
    assert gradient_matching_loss(coarse, target, mask, scales=4) > one > 0


def test_trimmed_mean_drops_exactly_the_largest_losses():
    g = torch.Generator().manual_seed(2)
    loss = torch.rand(2, 10, 10, generator=g, dtype=F64)
    mask = torch.ones(2, 10, 10, dtype=torch.bool)
    mask[1, :3] = False                                       # 70 valid pixels in sample 1
    expected = []
    for b in range(2):
        vals = np.sort(loss[b][mask[b]].numpy())
        n_drop = int(np.floor(0.1 * len(vals)))
        expected.append(vals[:len(vals) - n_drop].mean())
    got = trimmed_mean(loss, mask, 0.1)
    assert abs(got.item() - np.mean(expected)) < 1e-12
    # making the dropped pixels huge changes nothing; raising a kept one does
    top = loss.clone()
    for b in range(2):
        vals = torch.where(mask[b], loss[b], torch.full_like(loss[b], -1.0)).flatten()
        idx = torch.topk(vals, int(0.1 * mask[b].sum())).indices
        top[b].view(-1)[idx] = 1e9
    assert abs(trimmed_mean(top, mask, 0.1).item() - got.item()) < 1e-12
    kept = loss.clone()
    kept[0].view(-1)[torch.argmin(loss[0])] += 0.5
    assert trimmed_mean(kept, mask, 0.1) > got
    assert abs(trimmed_mean(loss, mask, 0.0).item() - np.mean([loss[b][mask[b]].mean() for b in range(2)])) < 1e-12


def test_cutmix_loss_is_the_area_weighted_sum_of_the_two_masked_losses(scene):
    pred, label_a, valid = scene
    label_b = (label_a.flip(-1) + 0.3) ** 2
    boxes = torch.zeros_like(valid)
    boxes[0, 4:14, 5:25] = True                               # 200 of 768 pixels
    boxes[2, :, :] = True                                     # all from image B
    got = cutmix_loss(ssi_loss, pred, label_a, label_b, valid, valid, boxes)
    parts = []
    for b in range(3):
        w = boxes[b].sum().item() / boxes[b].numel()
        la = ssi_loss(pred[b:b + 1], label_a[b:b + 1], valid[b:b + 1] & ~boxes[b:b + 1]) if w < 1 else 0.0
        lb = ssi_loss(pred[b:b + 1], label_b[b:b + 1], valid[b:b + 1] & boxes[b:b + 1]) if w > 0 else 0.0
        parts.append((1 - w) * la + w * lb)
    torch.testing.assert_close(got, sum(parts) / 3)
    # sample 1 has no box: its share is the plain loss against label A
    alone = cutmix_loss(ssi_loss, pred[1:2], label_a[1:2], label_b[1:2], valid[1:2], valid[1:2], boxes[1:2])
    torch.testing.assert_close(alone, ssi_loss(pred[1:2], label_a[1:2], valid[1:2]))
    # the box region is scored against label B: matching B there lowers the loss
    fixed = torch.where(boxes, label_b, pred)
    assert cutmix_loss(ssi_loss, fixed, label_a, label_b, valid, valid, boxes) < got


def test_feature_alignment_ignores_pixels_within_the_margin():
    s = torch.zeros(1, 2, 1, 4)
    f = torch.zeros(1, 2, 1, 4)
    s[0, :, 0, 0], f[0, :, 0, 0] = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])        # cos 1
    s[0, :, 0, 1], f[0, :, 0, 1] = torch.tensor([1.0, 0.0]), torch.tensor([0.9, 0.43589])    # cos 0.9
    s[0, :, 0, 2], f[0, :, 0, 2] = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])        # cos 0
    s[0, :, 0, 3], f[0, :, 0, 3] = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0])       # cos -1
    # alpha 0.15: pixels above 0.85 excluded -> mean(1 - 0, 1 + 1) = 1.5
    assert abs(feature_alignment_loss(s, f, 0.15).item() - 1.5) < 1e-5
    # alpha 0.05: the cos-0.9 pixel counts too -> mean(0.1, 1, 2)
    assert abs(feature_alignment_loss(s, f, 0.05).item() - (0.1 + 1 + 2) / 3) < 1e-4
    assert feature_alignment_loss(f, f, 0.15).item() == 0.0
    s.requires_grad_(True)
    feature_alignment_loss(s, f).backward()
    assert s.grad[0, :, 0, :2].abs().sum() == 0 and s.grad[0, :, 0, 2:].abs().sum() > 0


def test_perturbations_are_seeded_and_boxes_have_the_requested_size():
    x = torch.rand(4, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    a = gaussian_blur(colour_jitter(x, torch.Generator().manual_seed(7)), torch.Generator().manual_seed(8), 1.0)
    b = gaussian_blur(colour_jitter(x, torch.Generator().manual_seed(7)), torch.Generator().manual_seed(8), 1.0)
    torch.testing.assert_close(a, b)
    assert a.min() >= 0 and a.max() <= 1 and not torch.allclose(a, x)
    # blur lowers the high-frequency energy
    assert (a[..., 1:] - a[..., :-1]).abs().mean() < (x[..., 1:] - x[..., :-1]).abs().mean()
    boxes = cutmix_boxes(200, 32, 48, torch.Generator().manual_seed(4), prob=0.5)
    frac = boxes.flatten(1).float().mean(1)
    mixed = frac > 0
    assert 60 < int(mixed.sum()) < 140
    assert frac[mixed].min() > 0.01 and frac[mixed].max() < 0.45
