"""Gradient checks (float64, central differences) of every model's objectives w.r.t. the
parameters each update moves, through the models' own explicit backward chains.

Each ``*_grads`` method of a model fills ``.grad`` without an optimizer step; here its
returned loss is differentiated numerically. Dropout masks (GAN, CGAN) are held fixed by
restoring the model's generators (its Philox stream) before every evaluation, so the numeric and analytic
gradients see the same masks. BatchNorm runs in training mode (batch statistics)."""
import copy

import numpy as np
import pytest

from scratchgan.gradcheck import gradcheck
from scratchgan.models import get_model

N_PROJ = 4


def check_grads(model, fn, nets, n_projections=N_PROJ):
    """Check ``fn() -> loss`` (which fills .grad) against central differences."""
    params = [(f"{i}.{n}", p) for i, net in enumerate(nets) for n, p in net.named_parameters()]
    state = copy.deepcopy(model.rng.bit_generator.state)
    stream = model.random.state_dict()      # dropout masks come from the model's Philox stream

    def run():
        model.rng.bit_generator.state = copy.deepcopy(state)
        model.random.load_state_dict(stream)
        model.zero_grad()
        model.clear_cache()
        return fn()

    run()
    grads = [p.grad.copy() for _, p in params]
    assert any(np.abs(g).max() > 0 for g in grads), "no gradient reached the parameters"

    def forward(*arrays):
        return np.asarray(run()), None

    def backward(dy, cache):
        return tuple(g * dy for g in grads)

    gradcheck(forward, backward, [p.data for _, p in params], names=[n for n, _ in params],
              n_projections=n_projections)


def make(name, shape, **hyper):
    """A float64 model whose parameters are redrawn N(0, 0.4^2) (BN scales 1 + N(0, 0.1^2)).

    The paper inits (U(+-0.005), N(0, 0.02), zero biases) put many pre-activations within
    a finite-difference step of a ReLU/LeakyReLU kink and leave maxout pieces exactly tied
    (zero bias, all inputs dropped); gradients do not depend on the init, so the checks run
    away from those kinks."""
    m = get_model(name)(shape, rng=3, dtype=np.float64, **hyper)
    g = np.random.default_rng(17)
    for net in m.networks().values():
        for mod in net.modules():
            for pname, p in mod._parameters.items():
                if p is None:
                    continue
                if "BatchNorm" in type(mod).__name__:
                    p.data[...] = (1.0 if pname == "weight" else 0.0) + 0.1 * g.standard_normal(p.shape)
                else:
                    p.data[...] = 0.4 * g.standard_normal(p.shape)
    return m


def uniform(shape, lo=0.0, hi=1.0, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape)


@pytest.mark.parametrize("gen_loss", ["minimax", "nonsaturating", "logratio"])
def test_gan_paper_arch(gen_loss):
    m = make("gan", (1, 5, 5), g_hidden=6, d_units=5, d_pieces=3, z_dim=4, generator_loss=gen_loss)
    x = uniform((6, 1, 5, 5))
    noise = m.sample_noise(6)
    check_grads(m, lambda: m.discriminator_grads(x, noise)["loss_d"], [m.D])
    check_grads(m, lambda: m.generator_grads(noise)["loss_g"], [m.G])


def test_gan_official_variant():
    """The official variant's two objectives from one shared forward: d_obj w.r.t. D's
    parameters, g_obj w.r.t. G's (the same dropout masks, restored per evaluation)."""
    m = make("gan", (1, 5, 5), g_hidden=6, d_units=5, d_pieces=3, z_dim=4, variant="official")
    x = uniform((6, 1, 5, 5))
    noise = m.sample_noise(6)
    check_grads(m, lambda: m.official_grads(x, noise)["loss_d"], [m.D])
    check_grads(m, lambda: m.official_grads(x, noise)["loss_g"], [m.G])


def test_gan_toy_arch():
    m = make("gan", (2,), toy_hidden=6, toy_units=4, z_dim=3)
    x = np.random.default_rng(1).normal(size=(5, 2))
    noise = m.sample_noise(5)
    check_grads(m, lambda: m.discriminator_grads(x, noise)["loss_d"], [m.D])
    check_grads(m, lambda: m.generator_grads(noise)["loss_g"], [m.G])


@pytest.mark.parametrize("depth", [2, 3])
def test_dcgan(depth):
    m = make("dcgan", (1, 28, 28), ngf=2, ndf=2, z_dim=3, depth=depth)
    # depth 3: with the data of seeds 0 and 1 a random-projection step moves a LeakyReLU input
    # of the 4x4 stage across its kink (the analytic gradient there equals PyTorch's to 1e-15:
    # tests/test_dcgan_nets.py); seed 2 keeps the check away from it
    x = uniform((4, 1, 28, 28), -1, 1, seed=0 if depth == 2 else 2)
    noise = m.sample_noise(4)
    check_grads(m, lambda: m.discriminator_grads(x, noise)["loss_d"], [m.D])
    check_grads(m, lambda: m.generator_grads(noise)["loss_g"], [m.G])


def test_cgan():
    m = make("cgan", (1, 4, 4), z_dim=3, g_hidden_z=4, g_hidden_y=3, g_hidden=5, d_units_x=4,
             d_units_y=3, d_units=4)
    x = uniform((6, 1, 4, 4))
    y1h = m.one_hot(np.arange(6) % 10)
    noise = m.sample_noise(6)
    check_grads(m, lambda: m.discriminator_grads(x, noise, y1h)["loss_d"], [m.D])
    check_grads(m, lambda: m.generator_grads(noise)["loss_g"], [m.G])


def test_infogan_shared_trunk():
    m = make("infogan", (1, 4, 4), noise_dim=3, g_fc=6, g_channels=2, g_conv=2, d_conv1=2,
             d_conv2=2, d_fc=5, q_fc=4, lambda_cont=0.7)
    x = uniform((5, 1, 4, 4))
    # host noise from a fixed seed: with these draws no ReLU input of G sits within a
    # random-projection step of its kink (the device stream's draws put one there)
    noise = m.sample_noise(5, rng=np.random.default_rng(11))

    def d_loss():
        logs = m.discriminator_grads(x, noise)
        return logs["loss_d"] + logs["loss_q"]

    def g_loss():
        logs = m.generator_grads(noise)
        return logs["loss_g"] + logs["loss_info_g"]

    check_grads(m, d_loss, [m.trunk, m.d_head, m.q_head])
    check_grads(m, g_loss, [m.G])


@pytest.mark.parametrize("arch,shape", [("mlp", (2,)), ("dcgan", (1, 28, 28))])
def test_wgan(arch, shape):
    m = make("wgan", shape, arch=arch, mlp_hidden=5, mlp_layers=2, ngf=2, ndf=2, z_dim=3)
    x = np.random.default_rng(2).normal(size=(4,) + shape)
    noise = m.sample_noise(4)
    check_grads(m, lambda: m.discriminator_grads(x, noise)["loss_d"], [m.D])
    check_grads(m, lambda: m.generator_grads(noise)["loss_g"], [m.G])


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_vae(activation):
    m = make("vae", (1, 4, 4), hidden=6, latent_dim=3, activation=activation)
    x = uniform((5, 1, 4, 4))
    eps = np.random.default_rng(4).standard_normal((5, 3))
    check_grads(m, lambda: m.loss_grads(x, eps)["loss"], [m.encoder, m.decoder])


@pytest.mark.parametrize("label_prior", [False, True])
def test_aae(label_prior):
    extra = dict(prior="mixture10", label_prior=True) if label_prior else {}
    m = make("aae", (1, 4, 4), hidden=6, d_hidden=5, code_dim=2, **extra)
    x = uniform((5, 1, 4, 4))
    y1h = m.one_hot(np.arange(5)) if label_prior else None
    z_prior = m.to_model(m.sample_prior(5, labels=np.arange(5) if label_prior else None))
    check_grads(m, lambda: m.reconstruction_grads(x)["loss_recon"], [m.encoder, m.decoder])
    check_grads(m, lambda: m.discriminator_grads(x, z_prior, y1h)["loss_d"], [m.D])
    check_grads(m, lambda: m.generator_grads(x, y1h)["loss_g"], [m.encoder])


def test_check_catches_a_wrong_gradient():
    """The harness must fail when a backward is wrong: scale one gradient and expect failure."""
    m = make("vae", (1, 4, 4), hidden=6, latent_dim=3)
    x = uniform((5, 1, 4, 4))
    eps = np.random.default_rng(4).standard_normal((5, 3))

    def wrong():
        out = m.loss_grads(x, eps)["loss"]
        m.encoder[1].weight.grad *= 1.01
        return out

    with pytest.raises(AssertionError):
        check_grads(m, wrong, [m.encoder])
