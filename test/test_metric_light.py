"""Light metric model (ResNet-18 + small DPT decoder + ZoeDepth head): API, gradients and a tiny overfit."""
import pytest
import torch

from dro_depth.models.metric import ZoeDepth, ZoeDepthHead, build_light_zoedepth
from dro_depth.models.metric.light import LightCore, ResNet18Features


def silog(pred, target, lam=0.85):
    g = torch.log(pred.clamp_min(1e-3)) - torch.log(target)
    return torch.sqrt((g ** 2).mean() - lam * g.mean() ** 2) * 10


def _target(b, h, w):
    """Smooth positive depth maps (a tilted plane with a bump), 1.5-6 m."""
    ys = torch.linspace(0, 1, h).view(1, 1, h, 1)
    xs = torch.linspace(0, 1, w).view(1, 1, 1, w)
    bump = torch.exp(-((xs - 0.5) ** 2 + (ys - 0.4) ** 2) / 0.05)
    scale = torch.tensor([1.0, 1.5]).view(2, 1, 1, 1)[:b]
    return scale * (1.5 + 3.0 * ys + 1.0 * bump + 0 * xs)


def test_resnet_uses_torchvision_names():
    keys = set(ResNet18Features().state_dict())
    for k in ('conv1.weight', 'bn1.running_mean', 'layer1.0.conv1.weight', 'layer2.0.downsample.0.weight',
              'layer2.0.downsample.1.weight', 'layer4.1.bn2.bias'):
        assert k in keys
    assert sum(p.numel() for p in ResNet18Features().parameters()) == 11176512  # torchvision minus fc


@pytest.mark.parametrize('output_stride', [1, 2])
def test_light_core_shapes(output_stride):
    core = LightCore(width=32, output_stride=output_stride).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        rel, feats = core(x)
    s = output_stride
    assert rel.shape == (2, 64 // s, 96 // s) and (rel >= 0).all()
    assert [tuple(f.shape) for f in feats] == [(2, 32, 64 // s, 96 // s), (2, 32, 2, 3), (2, 32, 4, 6),
                                               (2, 32, 8, 12), (2, 32, 16, 24), (2, 32, 32, 48)]
    assert core.output_channels == (32, 32, 32, 32, 32, 32)
    with pytest.raises(ValueError, match='multiples of 32'):
        core(torch.randn(1, 3, 60, 96))


def test_light_model_api_forward_backward():
    torch.manual_seed(0)
    model = build_light_zoedepth('N', width=32, img_size=(64, 96))
    assert isinstance(model, ZoeDepth) and isinstance(model, ZoeDepthHead)
    assert model.config.btlnck_channels == 32 and model.config.block_channels == (32,) * 4
    img = torch.rand(2, 3, 64, 96)
    out = model(img)
    assert out.metric_depth.shape == (2, 1, 64, 96) and (out.metric_depth > 0).all()
    assert out.route == ['nyu', 'nyu'] and out.rel_depth.shape == (2, 64, 96)
    silog(out.metric_depth, _target(2, 64, 96)).backward()
    unused = {n for n, _ in model.named_parameters() if 'refinenet4.resConfUnit1' in n}  # unused as in MiDaS
    missing = [n for n, p in model.named_parameters() if n not in unused and (p.grad is None or not
                                                                               torch.isfinite(p.grad).all())]
    assert not missing, missing
    assert any(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n.startswith('core.encoder'))
    model.eval()
    res = model.infer(torch.rand(1, 3, 70, 90))
    assert res.metric_depth.shape == (1, 1, 70, 90)
    assert res.rel_depth.shape[-2:] == (64, 96)  # network size of the padded 70x90 input (keep-aspect rule)


def test_light_nk_routes_each_image():
    torch.manual_seed(0)
    model = build_light_zoedepth('NK', width=32, output_stride=2, img_size=(64, 96)).eval()
    imgs = torch.rand(3, 3, 64, 96)
    out = model.infer(imgs, pad_input=False)
    assert out.metric_depth.shape == (3, 1, 64, 96)
    assert out.domain_logits.shape == (3, 2) and out.route_probs.shape == (3, 2) and len(out.route) == 3
    for i in range(3):
        one = model.infer(imgs[i:i + 1], pad_input=False)
        assert one.route == out.route[i:i + 1]
        assert torch.allclose(one.metric_depth, out.metric_depth[i:i + 1], rtol=1e-4, atol=1e-5)
    forced = model.infer(imgs, domain=['indoor', 'outdoor', 'indoor'], pad_input=False)
    assert forced.route == ['nyu', 'kitti', 'nyu']


def test_light_bf16_core_close_to_float32():
    torch.manual_seed(0)
    model = build_light_zoedepth('N', width=32, img_size=(64, 96)).eval()
    img = torch.rand(1, 3, 64, 96)
    ref = model.infer(img).metric_depth
    model.core.to(torch.bfloat16)  # the forward feeds the core in its dtype and the head in float32
    fast = model.infer(img).metric_depth
    assert fast.dtype == torch.float32 and model.conv2.weight.dtype == torch.float32
    assert float((fast - ref).abs().max() / ref.abs().max()) < 0.05


def test_tiny_overfit_reduces_silog():
    torch.manual_seed(0)
    model = build_light_zoedepth('N', width=16, output_stride=2, img_size=(64, 64))
    img = torch.rand(2, 3, 64, 64)
    target = _target(2, 64, 64)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        pred = torch.nn.functional.interpolate(model(img).metric_depth, size=(64, 64), mode='bilinear',
                                               align_corners=False)
        loss = silog(pred, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert min(losses[-3:]) < 0.5 * losses[0], losses
