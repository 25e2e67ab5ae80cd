"""The DCGAN networks of models/nets.py against PyTorch in float64: forward, the gradient of
every parameter and of the input, for each depth (the 28x28 nets with 2 or 3 stride-2
stages, and the 64x64 net), in training mode (batch statistics)."""
import numpy as np
import pytest

from conftest import require_torch
from scratchgan.models.nets import dcgan_discriminator, dcgan_generator

torch = require_torch()


def torch_copy(net):
    layers = []
    for layer in net:
        name = type(layer).__name__
        if name in ("Conv2d", "ConvTranspose2d"):
            w = layer.weight.data
            cls = getattr(torch.nn, name)
            cin, cout = (w.shape[1], w.shape[0]) if name == "Conv2d" else (w.shape[0], w.shape[1])
            s = layer.stride if isinstance(layer.stride, int) else layer.stride[0]
            p = layer.padding if isinstance(layer.padding, int) else layer.padding[0]
            t = cls(cin, cout, w.shape[2], s, p, bias=False).double()
            t.weight.data = torch.tensor(w)
        elif name == "BatchNorm2d":
            t = torch.nn.BatchNorm2d(layer.weight.shape[0], eps=layer.eps).double()
            t.weight.data = torch.tensor(layer.weight.data)
            t.bias.data = torch.tensor(layer.bias.data)
        elif name == "LeakyReLU":
            t = torch.nn.LeakyReLU(layer.negative_slope if hasattr(layer, "negative_slope") else 0.2)
        elif name == "ReLU":
            t = torch.nn.ReLU()
        elif name == "Tanh":
            t = torch.nn.Tanh()
        elif name == "Flatten":
            t = torch.nn.Flatten()
        elif name == "Reshape":
            shape = layer.shape
            t = torch.nn.Unflatten(1, shape)
        else:
            raise AssertionError(f"no torch copy for {name}")
        layers.append(t)
    return torch.nn.Sequential(*layers)


def params(net):
    return [p for layer in net for p in layer._parameters.values() if p is not None]


@pytest.mark.parametrize("kind,size,depth", [("D", 28, 2), ("D", 28, 3), ("G", 28, 2),
                                             ("G", 28, 3), ("D", 64, 2), ("G", 64, 2)])
def test_dcgan_net_matches_torch(kind, size, depth):
    rng = np.random.default_rng(depth * 7 + size)
    if kind == "D":
        net = dcgan_discriminator(1, 2, size, rng, depth=depth)
        x = rng.uniform(-1, 1, (3, 1, size, size))
    else:
        net = dcgan_generator(5, 1, 2, size, rng, depth=depth)
        x = rng.normal(size=(3, 5))
    net.astype(np.float64)
    net.train()
    g = np.random.default_rng(17)
    for p in params(net):
        p.data[...] = 1.0 + 0.1 * g.standard_normal(p.shape) if p.data.ndim == 1 else \
            0.4 * g.standard_normal(p.shape)
    y = net(x)
    dy = rng.normal(size=y.shape)
    for p in params(net):
        p.grad[...] = 0
    dx = net.backward(dy)
    t = torch_copy(net)
    tx = torch.tensor(x, requires_grad=True)
    ty = t(tx)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    theirs = [p for p in t.parameters()]
    assert len(theirs) == len(params(net))
    for p, q in zip(params(net), theirs):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_depth_is_checked():
    with pytest.raises(ValueError, match="depth"):
        dcgan_discriminator(1, 2, 64, np.random.default_rng(0), depth=3)
    with pytest.raises(ValueError, match="depth"):
        dcgan_generator(5, 1, 2, 28, np.random.default_rng(0), depth=4)


def test_depth_auto_is_three_at_28_and_two_at_64():
    from scratchgan import nn as snn
    from scratchgan.models import get_model
    from scratchgan.models.nets import resolve_depth
    assert resolve_depth("auto", 28) == 3 and resolve_depth("auto", 64) == 2
    assert resolve_depth("2", 28) == 2 and resolve_depth(3, 28) == 3   # --set gives text

    def n_up(net):
        return sum(isinstance(m, snn.ConvTranspose2d) for m in net.modules())
    for name in ("dcgan", "wgan"):
        assert n_up(get_model(name)((1, 28, 28), rng=0, ngf=2, ndf=2, z_dim=3).G) == 4
        assert n_up(get_model(name)((1, 28, 28), rng=0, ngf=2, ndf=2, z_dim=3, depth=2).G) == 3
    assert n_up(get_model("dcgan")((3, 64, 64), rng=0, ngf=2, ndf=2, z_dim=3).G) == 5
    with pytest.raises(ValueError, match="'auto', 2 or 3"):
        resolve_depth("deep", 28)
