"""The image-to-image layers (InstanceNorm2d, ReflectionPad2d, Crop2d, Residual/ResnetBlock,
UNetSkip and the U-Net, Dropout active in eval): float64 gradient checks, PyTorch float64
twins, CuPy-vs-NumPy float64 checks (gpu marker)."""
import numpy as np
import pytest

from conftest import require_torch
from scratchgan import nn
from scratchgan.gradcheck import assert_close, gradcheck, gradcheck_module
from scratchgan.ops.instancenorm import instancenorm_backward, instancenorm_forward
from scratchgan.ops.padding import reflection_pad_backward, reflection_pad_forward

try:
    import cupy as cp
except Exception:  # pragma: no cover - depends on the machine
    cp = None

PADS = [1, (2, 3, 1, 4), (0, 2, 3, 0), (4, 4, 5, 5), (1, 2)]


# ------------------------------------------------------------------------ instance norm
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 3), (3, 2, 2, 2)])
def test_instancenorm_gradcheck(affine, shape, rng):
    m = nn.InstanceNorm2d(shape[1], affine=affine).astype(np.float64)
    if affine:
        m.weight.data[...] = rng.uniform(0.5, 2.0, shape[1])
        m.bias.data[...] = rng.standard_normal(shape[1])
    gradcheck_module(m, rng.standard_normal(shape) * 2 + 1)


def test_instancenorm_ops_gradcheck(rng):
    x, g, b = rng.standard_normal((2, 3, 3, 4)), rng.standard_normal(3), rng.standard_normal(3)
    gradcheck(lambda x, g, b: instancenorm_forward(x, g, b, 1e-5),
              lambda dy, c: instancenorm_backward(dy, c), [x, g, b])


def test_instancenorm_statistics_and_errors(rng):
    x = rng.standard_normal((3, 2, 5, 4)) * 3 + 2
    m = nn.InstanceNorm2d(2).astype(np.float64)
    y = m(x)
    m.clear_cache()
    assert np.abs(y.mean(axis=(2, 3))).max() < 1e-12
    assert np.abs(y.var(axis=(2, 3)) - x.var(axis=(2, 3)) / (x.var(axis=(2, 3)) + 1e-5)).max() < 1e-12
    with pytest.raises(ValueError, match="expected 2 channels"):
        m(rng.standard_normal((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="more than one spatial element"):
        m(rng.standard_normal((2, 2, 1, 1)))
    m.eval()
    assert_close(m(x), y)          # no running statistics: the same function in eval()


# ------------------------------------------------------------------------ padding, crop
@pytest.mark.parametrize("pad", PADS)
def test_reflection_pad_gradcheck(pad, rng):
    gradcheck_module(nn.ReflectionPad2d(pad), rng.standard_normal((2, 2, 5, 6)))


def test_reflection_pad_ops_gradcheck(rng):
    gradcheck(lambda x: reflection_pad_forward(x, (2, 1, 3, 2)),
              lambda dy, c: reflection_pad_backward(dy, c), [rng.standard_normal((1, 2, 4, 5))])


def test_reflection_pad_errors(rng):
    with pytest.raises(ValueError, match="smaller than its axis"):
        nn.ReflectionPad2d(3)(rng.standard_normal((1, 1, 3, 8)))
    with pytest.raises(ValueError, match="padding must be"):
        nn.ReflectionPad2d((1, 2, 3))
    with pytest.raises(ValueError, match="padding must be"):
        nn.ReflectionPad2d(-1)


@pytest.mark.parametrize("crop", [1, (2, 0, 1, 3)])
def test_crop_gradcheck(crop, rng):
    gradcheck_module(nn.Crop2d(crop), rng.standard_normal((2, 3, 6, 7)))


def test_pad_then_crop_is_identity(rng):
    x = rng.standard_normal((2, 1, 7, 7))
    with nn.no_grad():
        assert_close(nn.Crop2d(2)(nn.ReflectionPad2d(2)(x)), x)


# ------------------------------------------------------------------------ residual, U-Net
def _randomise(net, rng, scale=0.4):
    for mod in net.modules():
        for name, p in mod._parameters.items():
            if p is not None:
                p.data[...] = ((1.0 if name == "weight" and "Norm" in type(mod).__name__ else 0.0)
                               + scale * rng.standard_normal(p.shape))
    return net


@pytest.mark.parametrize("norm", ["instance", "instance-affine", "batch"])
def test_resnet_block_gradcheck(norm, rng):
    blk = _randomise(nn.ResnetBlock(3, norm=norm, rng=1).astype(np.float64), rng)
    gradcheck_module(blk, rng.standard_normal((2, 3, 4, 4)), n_projections=6)


def test_residual_shape_error(rng):
    with pytest.raises(ValueError, match="same shape"):
        nn.Residual(nn.Conv2d(2, 3, 1, rng=np.random.default_rng(0)).astype(np.float64))(rng.standard_normal((1, 2, 3, 3)))


def test_unet_skip_gradcheck(rng):
    inner = nn.Sequential(nn.Conv2d(2, 3, 3, 1, 1, rng=np.random.default_rng(0)), nn.Tanh()).astype(np.float64)
    gradcheck_module(nn.UNetSkip(inner), rng.standard_normal((2, 2, 4, 4)))


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_unet_generator_gradcheck(norm, rng):
    # dropout on (a NumPy generator re-seeded before every pass would change the masks, so it
    # is off here; dropout's gradient is checked below and in tests/test_dropout.py)
    g = nn.unet_generator(2, 1, 3, ngf=2, norm=norm, dropout=0.0, rng=0)
    g = _randomise(nn.Sequential(nn.ReflectionPad2d(2), g, nn.Crop2d(2)).astype(np.float64), rng)
    gradcheck_module(g, rng.standard_normal((2, 2, 4, 4)), n_projections=6)


def test_dropout_active_in_eval(rng):
    from scratchgan.philox import Philox
    x = rng.standard_normal((4, 50))
    d = nn.Dropout(0.5, rng=Philox(3), active_in_eval=True).eval()
    y = d(x)
    dx = d.backward(np.ones_like(x))
    assert (y == 0).any() and np.array_equal(dx != 0, y != 0)
    plain = nn.Dropout(0.5, rng=Philox(3)).eval()
    assert np.array_equal(plain(x), x)


# ------------------------------------------------------------------------ PyTorch twins
torch = None


def _torch():
    global torch
    if torch is None:
        torch = require_torch()
    return torch


@pytest.mark.parametrize("affine", [False, True])
def test_instancenorm_matches_torch(affine, rng):
    t = _torch()
    x = rng.standard_normal((3, 4, 5, 6)) * 2 + 1
    m = nn.InstanceNorm2d(4, affine=affine).astype(np.float64)
    ref = t.nn.InstanceNorm2d(4, affine=affine).double()
    if affine:
        w, b = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
        m.weight.data[...], m.bias.data[...] = w, b
        with t.no_grad():
            ref.weight.copy_(t.tensor(w)), ref.bias.copy_(t.tensor(b))
    xt = t.tensor(x, requires_grad=True)
    y, yt = m(x), ref(xt)
    dy = rng.standard_normal(y.shape)
    yt.backward(t.tensor(dy))
    assert_close(y, yt.detach().numpy())
    assert_close(m.backward(dy), xt.grad.numpy())
    if affine:
        assert_close(m.weight.grad, ref.weight.grad.numpy())
        assert_close(m.bias.grad, ref.bias.grad.numpy())


@pytest.mark.parametrize("pad", PADS)
def test_reflection_pad_matches_torch(pad, rng):
    t = _torch()
    m = nn.ReflectionPad2d(pad)
    top, bottom, left, right = m.padding
    x = rng.standard_normal((2, 3, 5, 6))
    xt = t.tensor(x, requires_grad=True)
    yt = t.nn.functional.pad(xt, (left, right, top, bottom), mode="reflect")
    y = m(x)
    dy = rng.standard_normal(y.shape)
    yt.backward(t.tensor(dy))
    assert_close(y, yt.detach().numpy())
    assert_close(m.backward(dy), xt.grad.numpy())


def _conv_to_torch(t, conv, transpose=False):
    kw = dict(stride=conv.stride, padding=conv.padding, bias=conv.bias is not None)
    cls = t.nn.ConvTranspose2d if transpose else t.nn.Conv2d
    c = cls(conv.in_channels, conv.out_channels, conv.kernel_size, **kw).double()
    with t.no_grad():
        c.weight.copy_(t.tensor(conv.weight.data))
        if conv.bias is not None:
            c.bias.copy_(t.tensor(conv.bias.data))
    return c


def test_resnet_block_matches_torch(rng):
    t = _torch()
    blk = _randomise(nn.ResnetBlock(3, norm="instance", rng=1).astype(np.float64), rng)
    layers = list(blk.body)
    c1, c2 = _conv_to_torch(t, layers[1]), _conv_to_torch(t, layers[5])
    x = rng.standard_normal((2, 3, 5, 5))
    xt = t.tensor(x, requires_grad=True)
    F = t.nn.functional
    h = F.relu(F.instance_norm(c1(F.pad(xt, (1, 1, 1, 1), mode="reflect"))))
    yt = xt + F.instance_norm(c2(F.pad(h, (1, 1, 1, 1), mode="reflect")))
    y = blk(x)
    dy = rng.standard_normal(y.shape)
    yt.backward(t.tensor(dy))
    assert_close(y, yt.detach().numpy())
    assert_close(blk.backward(dy), xt.grad.numpy())
    assert_close(layers[1].weight.grad, c1.weight.grad.numpy())
    assert_close(layers[5].bias.grad, c2.bias.grad.numpy())


def test_unet_generator_matches_torch(rng):
    """A 3-level U-Net (instance norm, no dropout) against the same net written in torch."""
    t = _torch()
    F = t.nn.functional
    g = _randomise(nn.unet_generator(1, 2, 3, ngf=2, norm="instance", dropout=0.0, rng=0)
                   .astype(np.float64), rng)
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    tc = [_conv_to_torch(t, m, isinstance(m, nn.ConvTranspose2d)) for m in convs]
    # module order: outer conv, mid conv, inner conv, inner convT, mid convT, outer convT
    d0, d1, d2, u2, u1, u0 = tc
    x = rng.standard_normal((2, 1, 8, 8))
    xt = t.tensor(x, requires_grad=True)
    e0 = d0(xt)
    e1 = F.instance_norm(d1(F.leaky_relu(e0, 0.2)))
    i2 = F.instance_norm(u2(F.relu(d2(F.leaky_relu(e1, 0.2)))))
    m1 = F.instance_norm(u1(F.relu(t.cat([e1, i2], 1))))
    yt = t.tanh(u0(F.relu(t.cat([e0, m1], 1))))
    y = g(x)
    dy = rng.standard_normal(y.shape)
    yt.backward(t.tensor(dy))
    assert_close(y, yt.detach().numpy())
    assert_close(g.backward(dy), xt.grad.numpy())
    for m, c in zip(convs, tc):
        assert_close(m.weight.grad, c.weight.grad.numpy(), name=m._label())


# ------------------------------------------------------------------------ GPU (CuPy float64)
def _cpu_gpu_pair(build, rng):
    cpu = build().astype(np.float64)
    _randomise(cpu, rng)
    gpu = build().astype(np.float64)
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.to("cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["instancenorm", "instancenorm-affine", "pad", "crop",
                                  "resblock", "unet"])
def test_layers_cupy_match_numpy_float64(name, rng):
    builders = {
        "instancenorm": lambda: nn.InstanceNorm2d(3),
        "instancenorm-affine": lambda: nn.InstanceNorm2d(3, affine=True),
        "pad": lambda: nn.ReflectionPad2d((2, 1, 3, 2)),
        "crop": lambda: nn.Crop2d((1, 2, 0, 1)),
        "resblock": lambda: nn.ResnetBlock(3, rng=0),
        "unet": lambda: nn.Sequential(nn.ReflectionPad2d(2),
                                      nn.unet_generator(3, 3, 3, ngf=2, norm="instance",
                                                        dropout=0.0, rng=0), nn.Crop2d(2)),
    }
    cpu, gpu = _cpu_gpu_pair(builders[name], rng)
    x = rng.standard_normal((2, 3, 4, 4))
    y = cpu(x)
    yg = gpu(cp.asarray(x))
    dy = rng.standard_normal(y.shape)
    dx, dxg = cpu.backward(dy), gpu.backward(cp.asarray(dy))
    assert_close(cp.asnumpy(yg), y, rtol=1e-10, atol=1e-12)
    assert_close(cp.asnumpy(dxg), dx, rtol=1e-10, atol=1e-12)
    for (n, p), (_, pg) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert_close(cp.asnumpy(pg.grad), p.grad, rtol=1e-10, atol=1e-12, name=n)


@pytest.mark.gpu
def test_resnet_block_gradcheck_gpu_float64(rng):
    blk = _randomise(nn.ResnetBlock(2, rng=1).astype(np.float64), rng).to("cuda")
    gradcheck_module(blk, cp.asarray(rng.standard_normal((2, 2, 4, 4))), n_projections=4)
