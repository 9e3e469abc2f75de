"""Depth Anything V2 against the official code (da2_mini.pt: official forward at random weights, depth 4).

Tolerances from the reference MANIFEST: float64 <= 1e-10 of |max|, float32 <= 1e-4 of |max|.
"""
import pytest
import torch

from dro_depth.models.depth_anything import load_depth_anything
from reference_data import reference_dir

MINI = reference_dir('depth_anything') / 'da2_mini.pt'
pytestmark = pytest.mark.skipif(not MINI.is_file(), reason=f'reference file missing: {MINI}')


@pytest.fixture(scope='module')
def ref():
    return torch.load(MINI, weights_only=True)


def _model(ref, metric, dtype):
    return load_depth_anything(ref['state_dict'], encoder='vits', metric=metric,
                               max_depth=ref['config']['max_depth_metric'], depth=ref['config']['depth'],
                               hooks=ref['config']['intermediate_layer_idx'], dtype=dtype)


def _input(ref, case, dtype):
    return ref['cases'][case]['input_q'].to(dtype) * ref['input_scale']


def _rel_err(out: torch.Tensor, record) -> float:
    """max |out - reference| / max |reference| over a full tensor or a record's sample."""
    out = out.double()
    if torch.is_tensor(record):
        assert out.shape == record.shape
        return float((out - record).abs().max() / record.abs().max())
    assert list(out.shape) == list(record['shape'])
    key = 'full' if 'full' in record else 'sample'
    if key == 'full':
        return float((out - record['full']).abs().max() / record['absmax'])
    flat = out.reshape(-1)[record['sample_start']::record['sample_step']][:record['sample_count']]
    assert abs(float(out.abs().max()) - record['absmax']) <= 1e-4 * record['absmax']
    return float((flat - record['sample']).abs().max() / record['absmax'])


FAST = [('B', False, torch.float64), ('B', True, torch.float32), ('A', False, torch.float32),
        ('C', True, torch.float32)]
SLOW = [('A', False, torch.float64), ('A', True, torch.float64), ('C', False, torch.float64),
        ('C', True, torch.float64), ('B', True, torch.float64), ('A', True, torch.float32),
        ('C', False, torch.float32), ('B', False, torch.float32)]


def _check(ref, case, metric, dtype):
    model = _model(ref, metric, dtype)
    with torch.no_grad():
        out = model(_input(ref, case, dtype))
    assert out.dtype == dtype
    record = ref['cases'][case]['depth_metric' if metric else 'depth_relative']
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert _rel_err(out, record) <= tol


@pytest.mark.parametrize('case,metric,dtype', FAST)
def test_output_matches_official(ref, case, metric, dtype):
    _check(ref, case, metric, dtype)


@pytest.mark.slow
@pytest.mark.parametrize('case,metric,dtype', SLOW)
def test_output_matches_official_large_float64(ref, case, metric, dtype):
    _check(ref, case, metric, dtype)


@pytest.mark.parametrize('case', ['A', 'B'])
def test_tokens_after_pos_embed_float64(ref, case):
    """The interpolated position embedding (scale factor + 0.1, float32 step) in float64 runs."""
    model = _model(ref, False, torch.float64)
    with torch.no_grad():
        tokens = model.pretrained.tokens(_input(ref, case, torch.float64))
    assert _rel_err(tokens, ref['cases'][case]['tokens_after_pos_embed']) <= 1e-10


def test_encoder_hooks_and_dpt_stages_float64(ref):
    """Portrait case B stage by stage: hooked (normed) tokens, class tokens, DPT reassemble and fusion."""
    model = _model(ref, False, torch.float64)
    case = ref['cases']['B']
    x = _input(ref, 'B', torch.float64)
    gh, gw = x.shape[-2] // 14, x.shape[-1] // 14
    with torch.no_grad():
        feats = model.pretrained.get_intermediate_layers(x, model.cfg.hooks)
        for (patch, cls), hook in zip(feats, case['encoder_hooks']):
            assert _rel_err(patch, hook['patch_tokens']) <= 1e-10
            assert _rel_err(cls, hook['cls_token']) <= 1e-10
        head = model.depth_head
        layers = head.reassemble([f[0] for f in feats], gh, gw)
        for i, layer in enumerate(layers):
            assert _rel_err(layer, case['dpt'][f'reassemble{i}']) <= 1e-10
        rn = [getattr(head.scratch, f'layer{i + 1}_rn')(t) for i, t in enumerate(layers)]
        for i, t in enumerate(rn):
            assert _rel_err(t, case['dpt'][f'layer{i + 1}_rn']) <= 1e-10
        s = head.scratch
        p4 = s.refinenet4(rn[3], size=rn[2].shape[2:])
        assert _rel_err(p4, case['dpt']['path_4']) <= 1e-10


def test_batch_and_dtype_consistency_on_made_up_size(ref):
    """A size not in the reference (140x238, grid 10x17): batch items are independent, float32 ~ float64."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 140, 238, dtype=torch.float64)
    m64, m32 = _model(ref, True, torch.float64), _model(ref, True, torch.float32)
    with torch.no_grad():
        both = m64(x)
        single = m64(x[1:])
        f32 = m32(x.float())
    assert both.shape == (2, 140, 238)
    assert float((both[1:] - single).abs().max()) <= 1e-10 * float(single.abs().max())
    assert float((f32.double() - both).abs().max()) <= 1e-4 * float(both.abs().max())
