"""NS dataset layout reader and the AO-like confidence of rendered triplets."""
import numpy as np
import pytest
import torch

from dro_depth.data.triplets import NSTripletDataset, render_confidence, synthetic_triplets, write_ns_triplet


@pytest.fixture(scope='module')
def samples():
    return list(synthetic_triplets(n_scenes=2, frames_per_scene=1, height=48, width=64))


def test_round_trip_through_the_ns_layout(tmp_path, samples):
    lines = [write_ns_triplet(tmp_path, f'{i:04d}', s) for i, s in enumerate(samples)]
    (tmp_path / 'trainingQ.txt').write_text('\n'.join(lines) + '\n')
    ds = NSTripletDataset(tmp_path / 'trainingQ.txt', ao_threshold=0.0)
    assert len(ds) == 2
    for s, r in zip(samples, ds):
        assert torch.equal(r.centre, s.centre) and torch.equal(r.right, s.right)  # RGB order kept
        kept = s.ao > 0     # the loader zeroes disparity where AO <= threshold
        assert (r.disparity - s.disparity)[kept].abs().max() <= 0.5 / 64 + 1e-6
        assert (r.disparity[~kept] == 0).all()
        assert (r.ao - s.ao).abs().max() <= 1 / 65536 + 1e-6


def test_loader_zeroes_unconfident_and_too_large_disparity(tmp_path, samples):
    s = samples[0]
    s = type(s)(s.left, s.centre, s.right, s.disparity.clone(), s.ao.clone())
    s.ao[..., :10, :] = 0.3
    s.disparity[..., -5:, :] = 600.0
    (tmp_path / 'list.txt').write_text(write_ns_triplet(tmp_path, 'a', s) + '\n')
    r = NSTripletDataset(tmp_path / 'list.txt', ao_threshold=0.5, max_disparity=512)[0]
    assert (r.disparity[..., :10, :] == 0).all() and (r.disparity[..., -5:, :] == 0).all()
    assert (r.disparity[..., 10:-5, :] > 0).float().mean() > 0.5


def test_random_crop_is_shared_by_all_views(tmp_path, samples):
    (tmp_path / 'l.txt').write_text(write_ns_triplet(tmp_path, 'a', samples[0]) + '\n')
    r = NSTripletDataset(tmp_path / 'l.txt', crop=(32, 40), seed=1)[0]
    assert r.left.shape == (3, 32, 40) and r.disparity.shape == (1, 32, 40) and r.ao.shape == (1, 32, 40)


def test_malformed_list_line_names_the_line(tmp_path):
    (tmp_path / 'bad.txt').write_text('a b c\n')
    with pytest.raises(ValueError, match='bad.txt:1: expected 5 paths'):
        NSTripletDataset(tmp_path / 'bad.txt')


def test_confidence_is_low_at_edges_sky_and_occlusions():
    d = np.full((20, 40), 4.0, np.float32)
    d[:, 20:] = 10.0          # a near surface on the right: an edge at x = 20
    d[:3] = np.nan            # sky
    conf = render_confidence(d)
    assert (conf[:3] == 0).all()
    assert conf[10, 5] == 1.0 and conf[10, 19] < 0.2 and conf[10, 20] < 0.2
    with_occ = render_confidence(d, disp_left=d, disp_right=d)
    assert with_occ[10, 5] == 1.0 and with_occ.mean() < conf.mean()


def test_rendered_triplets_have_consistent_disparity(samples):
    s = samples[0]
    assert s.left.shape == s.centre.shape == (3, 48, 64)
    known = s.disparity > 0
    assert known.float().mean() > 0.5 and (s.ao[~known] == 0).all()
