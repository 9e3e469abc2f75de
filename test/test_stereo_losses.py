"""NeRF-Supervised stereo losses: sign, masks, weights."""
import pytest
import torch

from dro_depth.data.triplets import synthetic_triplets
from dro_depth.training.stereo_losses import (NSLossConfig, ns_sequence_loss, photometric_error,
                                              proxy_disparity_loss, ssim_distance, stereo_sequence_weights,
                                              triplet_photometric_loss, warp_horizontal)


def _textured(h=48, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(1, 3, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(img, (h, w), mode='bilinear', align_corners=False)


def _shifted_triplet(d=5):
    centre = _textured()
    # centre pixel x matches x + d in the left view and x - d in the right view
    left, right = torch.roll(centre, d, dims=-1), torch.roll(centre, -d, dims=-1)
    return left, centre, right


@pytest.mark.parametrize('official_grid', [False, True])
def test_loss_is_lower_at_true_positive_disparity_than_at_its_negative(official_grid):
    left, centre, right = _shifted_triplet(5)
    at = {d: float(triplet_photometric_loss(torch.full((1, 1, 48, 80), float(d)), left, centre, right,
                                            official_grid=official_grid)) for d in (5, -5, 4, 6)}
    assert at[5] < 0.3 * at[-5]
    assert at[5] < at[4] and at[5] < at[6]


def test_sign_on_a_rendered_triplet_with_ao():
    s = next(synthetic_triplets(1, 1, 64, 96))
    left, centre, right = (x[None] / 255 for x in (s.left, s.centre, s.right))
    true = s.disparity[None]
    loss_true = triplet_photometric_loss(true, left, centre, right, s.ao[None] * 0.5)
    loss_neg = triplet_photometric_loss(-true, left, centre, right, s.ao[None] * 0.5)
    assert float(loss_true) < float(loss_neg)


def test_warp_is_exact_for_integer_shifts_and_flags_outside():
    img = _textured()
    warped, inside = warp_horizontal(img, torch.full((1, 1, 48, 80), 3.0))
    assert torch.allclose(warped[..., :77], img[..., 3:], atol=1e-6)
    assert inside[..., :77].all() and not inside[..., 77:].any()


def test_photometric_error_zero_for_identical_and_range():
    img = _textured()
    assert float(photometric_error(img, img).abs().max()) < 1e-6
    d = ssim_distance(img, 1 - img)
    assert float(d.min()) >= 0 and float(d.max()) <= 1


def test_proxy_disparity_l1_uses_ao_and_skips_unknown():
    pred = torch.full((1, 1, 4, 4), 3.0)
    target = torch.full((1, 1, 4, 4), 2.0)
    target[..., 0, :] = 0            # unknown
    ao = torch.full((1, 1, 4, 4), 0.5)
    assert float(proxy_disparity_loss(pred, target, ao)) == pytest.approx(0.5 * 12 / 16)
    assert float(proxy_disparity_loss(target, target, ao)) == 0.0


def test_sequence_weights_follow_raft_stereo():
    w = stereo_sequence_weights(12)
    assert w[-1] == 1.0 and w[0] == pytest.approx(0.9 ** 15)
    assert all(a < b for a, b in zip(w, w[1:]))
    assert stereo_sequence_weights(1) == [1.0]
    assert stereo_sequence_weights(22)[0] == pytest.approx(0.9 ** 15)


def test_sequence_loss_prefers_the_true_disparity_and_has_gradients():
    left, centre, right = _shifted_triplet(4)
    target = torch.full((1, 1, 48, 80), 4.0)
    ao = torch.full((1, 1, 48, 80), 0.8)
    good = torch.full((1, 1, 48, 80), 3.5, requires_grad=True)
    loss, parts = ns_sequence_loss([good * 0.5, good], left, centre, right, target, ao, NSLossConfig())
    loss.backward()
    assert good.grad is not None and float(good.grad.sum()) < 0   # increasing d toward 4 lowers it
    bad, _ = ns_sequence_loss([-target], left, centre, right, target, ao)
    best, _ = ns_sequence_loss([target], left, centre, right, target, ao)
    assert float(best) < float(bad) and set(parts) == {'disp', 'photo'}
