"""Training dataset over sequences: sample layout, rescaled intrinsics, relative poses."""
import numpy as np
import pytest
import torch

from dro_depth.data.dataset import SequenceDataset
from dro_depth.geometry import PinholeCamera
from dro_depth.data.synthetic import generate_sequence


@pytest.fixture(scope='module')
def seq():
    return generate_sequence('indoor', seed=2, n_frames=8, height=48, width=64)


def test_sample_layout_and_relative_poses(seq):
    ds = SequenceDataset([seq], offsets=(-2, 2), height=24, width=32)
    assert len(ds) == 4
    s = ds[0]
    assert s['image'].shape == (3, 24, 32) and s['refs'].shape == (2, 3, 24, 32)
    assert s['depth'].shape == (1, 24, 32) and s['K'].shape == (3, 3) and s['T_ref_tgt'].shape == (2, 4, 4)
    assert 0.0 <= float(s['image'].min()) and float(s['image'].max()) <= 1.0
    t = int(s['frame'])
    assert t == 2
    expected = np.linalg.inv(seq.poses[t - 2]) @ seq.poses[t]
    np.testing.assert_allclose(s['T_ref_tgt'][0].numpy(), expected, atol=1e-5)
    # a target point maps into the reference camera with T_ref_tgt: X_ref = R X_tgt + t
    X_tgt = np.array([0.3, -0.2, 2.0, 1.0])
    X_ref = np.linalg.inv(seq.poses[t - 2]) @ (seq.poses[t] @ X_tgt)
    np.testing.assert_allclose(s['T_ref_tgt'][0].numpy() @ X_tgt, X_ref, atol=1e-5)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch['refs'].shape == (2, 2, 3, 24, 32)


def test_resized_intrinsics_match_resized_depth(seq):
    ds = SequenceDataset(seq, offsets=(1,), height=24, width=32)
    s = ds[0]
    K = s['K'].numpy().astype(np.float64)
    # the pixel-centre convention: full-res pixel (u, v) lands at ((u + .5) / 2 - .5, (v + .5) / 2 - .5)
    np.testing.assert_allclose(K, PinholeCamera(seq.K, seq.width, seq.height).resized(32, 24).K, rtol=1e-6)
    assert K[0, 2] == pytest.approx((seq.K[0, 2] + 0.5) * 0.5 - 0.5)
    d = s['depth'][0].numpy()
    assert np.all(np.isfinite(d))
    # depth nearest-resized from the full-res map (values exist in the original)
    assert np.isin(d, seq.depths[0]).all()


def test_skip_static_and_bad_offsets(seq):
    static = generate_sequence('indoor', seed=2, n_frames=60, height=12, width=16)
    full = SequenceDataset(static, offsets=(-1, 1))
    moving = SequenceDataset(static, offsets=(-1, 1), skip_static=True)
    assert len(moving) < len(full)
    for i in range(len(moving)):
        rel = moving[i]['T_ref_tgt'].numpy()
        assert not np.allclose(rel[0], np.eye(4)) and not np.allclose(rel[1], np.eye(4))
    with pytest.raises(ValueError, match='non-zero'):
        SequenceDataset(seq, offsets=(0, 1))
