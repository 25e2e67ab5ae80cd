"""The models, one file per paper; see docs/models.md.

``get_model(name)`` returns the class; construct it with
``Model(data_shape, num_classes=10, device="cpu", dtype=np.float32, rng=None, **hyper)``.
"""
from .base import GenerativeModel, LOOP_KEYS
from .gan import GAN
from .dcgan import DCGAN
from .cgan import CGAN
from .infogan import InfoGAN
from .wgan import WGAN
from .wgan_gp import WGANGP
from .vae import VAE
from .aae import AAE
from .cvae import CVAE
from .m2 import M2
from .betavae import BetaVAE
from .bigan import BiGAN
from .ali import ALI
from .vaegan import VAEGAN
from .pix2pix import Pix2Pix
from .cyclegan import CycleGAN
from .pggan import PGGAN
from ..nn import Maxout       # the GAN and CGAN discriminators' layer (lives in nn)

# one entry a line (the CLI's MODEL_NAMES lists the same names in the same order)
REGISTRY = {
    "gan": GAN,
    "dcgan": DCGAN,
    "cgan": CGAN,
    "infogan": InfoGAN,
    "wgan": WGAN,
    "wgan-gp": WGANGP,
    "vae": VAE,
    "aae": AAE,
    "cvae": CVAE,
    "m2": M2,
    "betavae": BetaVAE,
    "bigan": BiGAN,
    "ali": ALI,
    "vaegan": VAEGAN,
    "pix2pix": Pix2Pix,
    "cyclegan": CycleGAN,
    "pggan": PGGAN,
}


def get_model(name):
    """The model class registered under ``name``; a ValueError lists the valid choices."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; valid choices are {sorted(REGISTRY)}") from None


__all__ = ["GenerativeModel", "LOOP_KEYS", "REGISTRY", "get_model", "GAN", "DCGAN", "CGAN",
           "InfoGAN", "WGAN", "WGANGP", "VAE", "AAE", "Maxout", "CVAE", "M2", "BetaVAE", "BiGAN", "ALI", "VAEGAN", "Pix2Pix", "CycleGAN", "PGGAN"]
