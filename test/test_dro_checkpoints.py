"""Loading and saving DRO weights: official .pt, plain state dicts, safetensors, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reference_data import reference_dir
from dro_depth.models.checkpoints import CheckpointError, parse_version, read_checkpoint
from dro_depth.models.dro import DRONet, build_dro, load_dro, save_dro




REF = reference_dir('dro')
CKPT = REF / 'dro_official_it12h.pt'
SHAPES = REF / 'dro_state_dict_shapes.json'
needs_reference = pytest.mark.skipif(not (CKPT.is_file() and SHAPES.is_file()),
                                     reason=f'DRO reference data not found under {REF}')

H, W = 64, 96


def _inputs(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, H, W, generator=g, dtype=dtype)
    refs = torch.rand(1, 2, 3, H, W, generator=g, dtype=dtype)
    K = torch.tensor([[60.0, 0.0, 47.5], [0.0, 62.0, 31.5], [0.0, 0.0, 1.0]], dtype=dtype)
    return target, refs, K


def _run(model: DRONet, iterations: int = 4):
    p = next(model.parameters())
    target, refs, K = _inputs(p.dtype)
    with torch.inference_mode():
        out = model(target, refs, K, iterations=iterations)
    return out.inv_depth, out.poses


@pytest.fixture(scope='module')
def official_sd() -> dict:
    return torch.load(CKPT, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def official_model() -> DRONet:
    return load_dro(CKPT, dtype=torch.float32)


@needs_reference
def test_official_checkpoint_keys_and_config(official_model, official_sd):
    entries = json.loads(SHAPES.read_text())['entries']
    sd = official_model.state_dict()
    assert list(sd) == list(entries)  # same names, same order as the official network
    for k, (shape, _) in entries.items():
        assert tuple(sd[k].shape) == tuple(shape), k
    assert official_model.hidden_dim == 128 and official_model.default_iterations == 12
    assert official_model.version == 'it12-h'
    assert not official_model.training
    # float16 values upcast exactly
    k = 'update_block_depth.depth_gru.convz1.weight'
    assert torch.equal(sd[k], official_sd['state_dict']['model.depth_net.' + k].float())
    assert sd[k].dtype == torch.float32


@needs_reference
@pytest.mark.parametrize('prefix', ['', 'depth_net.', 'model.depth_net.'])
def test_plain_state_dict_with_and_without_prefix(official_model, official_sd, prefix):
    plain = {prefix + k[len('model.depth_net.'):]: v for k, v in official_sd['state_dict'].items()}
    model = load_dro(plain, dtype=torch.float32)
    for (ka, a), (kb, b) in zip(model.state_dict().items(), official_model.state_dict().items()):
        assert ka == kb and torch.equal(a, b), ka


@needs_reference
def test_safetensors_round_trip_identical(official_model, tmp_path):
    expected = _run(official_model, 2)
    full = save_dro(official_model, tmp_path / 'dro_full.safetensors', metadata={'note': 'test'})
    half = save_dro(official_model, Path(tmp_path / 'dro_half'), half=True)  # suffix appended
    assert half.suffix == '.safetensors' and half.is_file()
    assert half.stat().st_size < 40e6 < full.stat().st_size
    for path in (full, str(half)):
        model = load_dro(path, dtype=torch.float32)
        assert model.hidden_dim == 128 and model.version == 'it12-h'
        got = _run(model, 2)
        # the official weights are float16 values, so even the half-precision file is lossless
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert read_checkpoint(full).config['note'] == 'test'


def test_hidden64_variant_inferred(tmp_path):
    model = build_dro(64, seed=7, dtype=torch.float64).eval()
    path = save_dro(model, tmp_path / 'h64.safetensors')
    loaded = load_dro(path, dtype=torch.float64)
    assert loaded.hidden_dim == 64 and loaded.update_block_depth.depth_gru.hidden_dim == 64
    a, b = _run(model, 2), _run(loaded, 2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # a state dict without metadata works too: the size comes from the shapes
    loaded2 = load_dro({'depth_net.' + k: v for k, v in model.state_dict().items()}, dtype=torch.float64)
    assert loaded2.hidden_dim == 64


def test_released_style_checkpoint_file(tmp_path):
    """A .ckpt like the released ones: state_dict with 'model.depth_net.' keys plus a config dict."""
    model = build_dro(64, seed=1).eval()
    path = tmp_path / 'released.ckpt'
    torch.save({'state_dict': {'model.depth_net.' + k: v.half() if v.is_floating_point() else v
                               for k, v in model.state_dict().items()},
                'config': {'model': {'depth_net': {'version': 'it8-out', 'min_depth': 0.5,
                                                   'max_depth': 10.0}}},
                'epoch': 3}, path)
    loaded = load_dro(path, dtype=torch.float64)
    assert loaded.hidden_dim == 64 and loaded.out_normalize and loaded.default_iterations == 8
    assert loaded.min_depth == 0.5 and loaded.max_depth == 10.0
    assert next(loaded.parameters()).dtype == torch.float64


def test_error_on_foreign_dict():
    with pytest.raises(CheckpointError, match='encoder.weight'):
        load_dro({'encoder.weight': torch.zeros(3), 'decoder.bias': torch.zeros(2)})
    with pytest.raises(CheckpointError, match='not tensors'):
        load_dro({'state_dict': {'fnet.conv1.weight': torch.zeros(1), 'fnet.meta': 'x'}})
    assert issubclass(CheckpointError, ValueError)


def test_error_names_missing_unexpected_and_mismatched_keys():
    sd = build_dro(64, seed=0).state_dict()
    truncated = {k: v for k, v in sd.items() if not k.startswith('cnet.')}
    with pytest.raises(CheckpointError, match=r'missing keys \(96\): cnet\.conv1\.weight') as exc:
        load_dro(truncated)
    assert 'more)' in str(exc.value)  # long lists are truncated
    extra = dict(sd)
    extra['fnet.layer4.0.conv1.weight'] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r'unexpected keys \(1\): fnet\.layer4\.0\.conv1\.weight'):
        load_dro(extra)
    bad = dict(sd)
    bad['fnet.out_conv.weight'] = torch.zeros(64, 128, 3, 3)
    with pytest.raises(CheckpointError, match=r'fnet\.out_conv\.weight: checkpoint \(64, 128, 3, 3\)'):
        load_dro(bad)
    mixed = dict(sd)
    mixed['update_block_pose.pose_head.conv1_pose.weight'] = torch.zeros(128, 128, 3, 3)
    with pytest.raises(CheckpointError, match='inconsistent GRU hidden size'):
        load_dro(mixed)


def test_error_on_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_dro(tmp_path / 'nope.pt')
    lst = tmp_path / 'list.pt'
    torch.save([torch.zeros(1)], lst)
    with pytest.raises(CheckpointError, match='expected a dict'):
        load_dro(lst)
    garbage = tmp_path / 'garbage.safetensors'
    garbage.write_bytes(b'not a safetensors file')
    with pytest.raises(CheckpointError, match='safetensors'):
        load_dro(garbage)
    pickled = tmp_path / 'pickled.pt'
    torch.save({'state_dict': {}, 'config': _Opaque()}, pickled)
    with pytest.raises(CheckpointError, match='weights_only'):
        load_dro(pickled)
    with pytest.raises(TypeError):
        load_dro(12345)


def test_parse_version():
    assert parse_version('it12-h') == {'version': 'it12-h', 'iterations': 12, 'seq_len': 4,
                                       'hidden_dim': 128, 'out_normalize': False}
    v = parse_version('it8-h-out-seq2')
    assert v['seq_len'] == 2 and v['out_normalize'] and v['iterations'] == 8
    with pytest.raises(CheckpointError):
        parse_version('resnet18')


def test_random_init_via_none():
    model = load_dro(None, dtype=torch.float32)
    assert isinstance(model, DRONet) and not model.training and model.hidden_dim == 128


class _Opaque:
    """A pickled class instance: weights_only loading must refuse it."""
