"""Layers: stateful Modules that hold Parameters and caches and call ``scratchgan.ops``.

See :mod:`scratchgan.nn.module` for the one-pending-cache rule.
"""
from .module import (CacheError, Module, Parameter, Sequential, frozen, is_grad_enabled,
                     no_grad)
from .linear import Linear
from .mlp import mlp
from .activation import LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .norm import BatchNorm1d, BatchNorm2d
from .layernorm import LayerNorm
from .dropout import Dropout
from .shape import Flatten, Reshape, Unflatten
from .conditioning import Concat, OneHotMap, TwoInputNet, one_hot
from .maxout import Maxout
from .conv import Conv2d, ConvTranspose2d
from .instancenorm import InstanceNorm2d
from .padding import Crop2d, ReflectionPad2d
from .resblock import Residual, ResnetBlock
from .unet import UNetSkip, unet_generator
from .progressive import (AvgPool2d, EqualizedConv2d, EqualizedLinear, FadeIn, MinibatchStdDev,
                          PixelNorm, Upsample2d, from_rgb, to_rgb)

__all__ = ["CacheError", "Module", "Parameter", "Sequential", "frozen", "is_grad_enabled",
           "no_grad", "Linear", "mlp", "LeakyReLU", "ReLU", "Sigmoid", "Softplus", "Tanh",
           "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout", "Flatten", "Reshape",
           "Unflatten", "Concat", "OneHotMap", "TwoInputNet", "one_hot", "Maxout", "Conv2d",
           "ConvTranspose2d", "InstanceNorm2d", "Crop2d", "ReflectionPad2d", "Residual",
           "ResnetBlock", "UNetSkip", "unet_generator", "AvgPool2d", "EqualizedConv2d",
           "EqualizedLinear", "FadeIn", "MinibatchStdDev", "PixelNorm", "Upsample2d", "from_rgb",
           "to_rgb"]
