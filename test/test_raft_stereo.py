"""RAFT-Stereo against the official code (reference files at random weights) and its own invariants."""
import json

import pytest
import torch

from dro_depth.models.checkpoints import CheckpointError
from dro_depth.models.stereo import (REALTIME, InputPadder, RAFTStereo, StereoInputError, load_raft_stereo,
                                     read_raft_stereo_state_dict)
from reference_data import reference_dir

REF = reference_dir('stereo')
needs_ref = pytest.mark.skipif(not (REF / 'raft_stereo_case_public.pt').is_file(),
                               reason=f'stereo reference data not found in {REF}')


@pytest.fixture(scope='module')
def case():
    return torch.load(REF / 'raft_stereo_case_public.pt', weights_only=True)


@pytest.fixture(scope='module')
def ref_sd():
    return torch.load(REF / 'raft_stereo_ns_random.pt', weights_only=True)['state_dict']


@pytest.fixture(scope='module')
def shapes():
    return json.loads((REF / 'raft_stereo_ns_state_dict_shapes.json').read_text())


@pytest.fixture(scope='module')
def net64(ref_sd):
    return load_raft_stereo(ref_sd, dtype=torch.float64)


@pytest.fixture(scope='module')
def net32(ref_sd):
    return load_raft_stereo(ref_sd)


@needs_ref
@pytest.mark.parametrize('layout, model_cfg', [('ns_release', None), ('raftstereo_realtime', REALTIME)])
def test_keys_and_shapes_match_the_manifest(shapes, layout, model_cfg):
    model = RAFTStereo(model_cfg) if model_cfg else RAFTStereo()
    ours = {f'module.{k}': list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: v['shape'] for k, v in shapes['configs'][layout]['keys'].items()}
    assert ours == theirs
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == shapes['configs'][layout]['num_parameters']


@needs_ref
def test_float64_matches_official_per_iteration(net64, case):
    """Iterations 1..12 (train-mode list), the pyramid shapes and the first correlation lookup."""
    left, right = case['left_padded'].double(), case['right_padded'].double()
    with torch.no_grad():
        net, inp, corr = net64.encode(left, right)
        assert [list(c.shape) for c in corr.pyramid] == case['corr_pyramid_shapes']
        assert (corr.pyramid[0] - case['intermediates']['corr_pyramid_level0']).abs().max() < 1e-9
        steps = list(net64.iterate(left, right, iters=12))
    ref = case['iters12']
    flow_low = torch.stack([s.flow_low for s in steps])
    flow_up = torch.stack([s.flow_up for s in steps])
    assert (flow_low - ref['flow_low_per_iter']).abs().max() < 1e-9
    assert (flow_up - ref['flow_up_per_iter']).abs().max() < 1e-9
    assert (flow_low[:, :, 1] == 0).all()
    # iters7 is step 7 of iters12
    assert (flow_low[6] - case['iters7']['flow_low']).abs().max() < 1e-9
    assert (flow_up[6] - case['iters7']['flow_up']).abs().max() < 1e-9


@needs_ref
@pytest.mark.parametrize('iters', [7, 12])
def test_float32_test_mode_and_disparity(net32, case, iters):
    ref = case[f'iters{iters}']
    with torch.no_grad():
        flow_low, flow_up = net32(case['left_padded'].float(), case['right_padded'].float(), iters=iters,
                                  test_mode=True)
        disp = net32.disparity(case['left'].float(), case['right'].float(), iters=iters)
    assert flow_low.shape == (1, 2, 32, 48) and flow_up.shape == (1, 1, 128, 192)
    assert (flow_low.double() - ref['flow_low']).abs().max() < 2e-4
    assert (flow_up.double() - ref['flow_up']).abs().max() < 2e-4
    assert disp.shape == (1, 1, 120, 180)
    assert (disp.double() - ref['disparity']).abs().max() < 2e-4
    # positive disparity is the negated x flow of the padded run, cropped
    assert torch.equal(disp, -InputPadder(case['left'].shape).unpad(flow_up))


@needs_ref
def test_batch_of_two_equals_two_singles_at_a_made_up_size(net32):
    g = torch.Generator().manual_seed(3)
    left = torch.rand(2, 3, 70, 101, generator=g) * 255
    right = torch.roll(left, shifts=-4, dims=-1)
    with torch.no_grad():
        both = net32.disparity(left, right, iters=3)
        singles = torch.cat([net32.disparity(left[i:i + 1], right[i:i + 1], iters=3) for i in range(2)])
    assert both.shape == (2, 1, 70, 101)
    assert (both - singles).abs().max() < 2e-4


def test_padder_is_sintel_replicate_and_inverts():
    x = torch.arange(120 * 180, dtype=torch.float32).reshape(1, 1, 120, 180)
    padder = InputPadder(x.shape)
    assert padder.pad_lrtb == [6, 6, 4, 4]
    (padded,) = padder.pad(x)
    assert padded.shape[-2:] == (128, 192)
    # replicated border: the padded top-left block repeats the image corner, the centre is the image
    assert (padded[..., :4, :6] == x[..., 0, 0]).all()
    assert torch.equal(padded[..., 4, 6:186], x[..., 0, :])
    assert torch.equal(padder.unpad(padded), x)
    assert InputPadder((64, 96)).pad_lrtb == [0, 0, 0, 0]


@needs_ref
def test_loads_release_file_name_with_and_without_module_prefix(tmp_path, ref_sd, net32):
    tar = tmp_path / 'raftstereo-NS.tar'
    torch.save(ref_sd, tar)  # the release is a plain state dict in a torch zip file
    plain = {k[len('module.'):]: v for k, v in ref_sd.items()}
    for source in (tar, plain, {'state_dict': ref_sd}):
        model = load_raft_stereo(source)
        assert not model.training and model.cfg.variant == 'ns_release'
        for k, v in model.state_dict().items():
            assert torch.equal(v, net32.state_dict()[k]), k


@needs_ref
def test_strict_errors_name_keys_and_shapes(ref_sd):
    sd = dict(ref_sd)
    sd.pop('module.update_block.gru16.convq.bias')
    with pytest.raises(CheckpointError, match='update_block.gru16.convq.bias'):
        load_raft_stereo(sd)
    sd = dict(ref_sd)
    sd['module.fnet.conv2.weight'] = torch.zeros(128, 128, 1, 1)
    with pytest.raises(CheckpointError, match=r'fnet.conv2.weight: checkpoint \(128, 128, 1, 1\)'):
        load_raft_stereo(sd)
    with pytest.raises(CheckpointError, match='not a RAFT-Stereo state dict'):
        load_raft_stereo({'conv.weight': torch.zeros(1)})


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'args': object()}, path)
    with pytest.raises(CheckpointError, match='weights_only'):
        read_raft_stereo_state_dict(path)


def test_realtime_layout_round_trip_and_runs():
    torch.manual_seed(0)
    model = RAFTStereo(REALTIME).eval()
    sd = {f'module.{k}': v for k, v in model.state_dict().items()}
    loaded = load_raft_stereo(sd)
    assert loaded.cfg == REALTIME and loaded.cfg.variant == 'realtime'
    left = torch.rand(1, 3, 40, 72) * 255
    with torch.no_grad():
        disp = loaded.disparity(left, torch.roll(left, -3, dims=-1), iters=2)
        low, up = loaded(*InputPadder(left.shape).pad(left, left), iters=2, test_mode=True)
    assert disp.shape == (1, 1, 40, 72) and torch.isfinite(disp).all()
    assert low.shape == (1, 2, 8, 12) and up.shape == (1, 1, 64, 96)


def test_forward_rejects_unpadded_and_mismatched_inputs():
    model = RAFTStereo(REALTIME).eval()
    with pytest.raises(StereoInputError, match='multiples of 32'):
        model(torch.zeros(1, 3, 40, 64), torch.zeros(1, 3, 40, 64), iters=1, test_mode=True)
    with pytest.raises(StereoInputError, match='one shape'):
        model(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 96), iters=1, test_mode=True)
