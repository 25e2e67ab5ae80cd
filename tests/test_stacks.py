"""Gradient checks of whole stacks: a small DCGAN generator and discriminator,
in float64, through every layer's backward at once (train-mode BatchNorm)."""
import numpy as np
import pytest

import scratchgan as sg
from scratchgan import nn
from scratchgan.gradcheck import gradcheck_module

KINKED = (nn.ReLU, nn.LeakyReLU)


def _min_kink_distance(stack, x):
    """Smallest |input| seen by any ReLU/LeakyReLU: the check's no-kink precondition."""
    smallest = np.inf
    with sg.no_grad():
        for layer in stack:
            if isinstance(layer, KINKED):
                smallest = min(smallest, float(np.abs(x).min()))
            x = layer(x)
    return smallest


def _generator(z_dim=6, ngf=4):
    return nn.Sequential(
        nn.Linear(z_dim, 2 * ngf * 3 * 3), nn.BatchNorm1d(2 * ngf * 3 * 3), nn.ReLU(),
        nn.Reshape(2 * ngf, 3, 3),
        nn.ConvTranspose2d(2 * ngf, ngf, 4, stride=2, padding=1), nn.BatchNorm2d(ngf), nn.ReLU(),
        nn.ConvTranspose2d(ngf, 1, 4, stride=2, padding=1), nn.Tanh())


def _discriminator(ndf=3):
    return nn.Sequential(
        nn.Conv2d(1, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(ndf, 2 * ndf, 4, stride=2, padding=1), nn.BatchNorm2d(2 * ndf), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * ndf * 3 * 3, 1))


@pytest.mark.parametrize("seed", [0, 1])
def test_dcgan_generator_stack_gradcheck(seed):
    sg.manual_seed(seed)
    G = _generator().astype(np.float64).train()
    z = np.random.default_rng(seed).uniform(-1, 1, size=(5, 6))
    assert G(z).shape == (5, 1, 12, 12)
    G.clear_cache()
    assert _min_kink_distance(G, z) > 1e-5, "pick another seed: an activation input sits at a kink"
    gradcheck_module(G, z, n_projections=6, seed=seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_dcgan_discriminator_stack_gradcheck(seed):
    sg.manual_seed(seed)
    D = _discriminator().astype(np.float64).train()
    x = np.random.default_rng(seed).uniform(-1, 1, size=(4, 1, 12, 12))
    assert _min_kink_distance(D, x) > 1e-5, "pick another seed: an activation input sits at a kink"
    gradcheck_module(D, x, n_projections=6, seed=seed)


def test_stack_gradcheck_catches_a_wrong_layer_backward(monkeypatch):
    """The whole-stack check is sensitive to one wrong layer deep inside."""
    sg.manual_seed(0)
    D = _discriminator().astype(np.float64).train()
    x = np.random.default_rng(0).uniform(-1, 1, size=(4, 1, 12, 12))
    bn = D[3]
    original = type(bn).backward

    def wrong_backward(self, dy):
        return original(self, dy) * 1.01

    monkeypatch.setattr(type(bn), "backward", wrong_backward)
    with pytest.raises(AssertionError):
        gradcheck_module(D, x, n_projections=6)
