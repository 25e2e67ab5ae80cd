"""U-Net skip connections (Ronneberger et al. 2015) as pix2pix's generator uses them.

``UNetSkip(inner)`` computes ``y = concat(x, inner(x))`` along the channels with the
existing :class:`scratchgan.nn.Concat`: the encoder's maps at one resolution are joined to
the decoder's maps at the same resolution. Backward (docs/derivations/image2image.md):
concat's backward splits dy into ``(dy_skip, dy_inner)``; x reaches y along two paths, so
``dx = dy_skip + inner.backward(dy_inner)``.

``unet_generator`` builds pix2pix's encoder-decoder recursively, innermost block first, as
the authors' code does:

  outermost:  Conv(c_in -> ngf, 4/2/1) ............................. ReLU ConvT(2 ngf -> c_out) Tanh
  middle:     LReLU(0.2) Conv(4/2/1) Norm  [ inner ]  ReLU ConvT(4/2/1) Norm (Dropout)
  innermost:  LReLU(0.2) Conv(4/2/1)                  ReLU ConvT(4/2/1) Norm (Dropout)

Every block but the outermost is wrapped in ``UNetSkip``, so each decoder layer sees
2x the channels. ``levels`` down-samplings take a ``2^levels`` px image to 1x1.
"""
from __future__ import annotations

from .activation import LeakyReLU, ReLU, Tanh
from .conditioning import Concat
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout
from .module import Module, Sequential
from .resblock import _generator, make_norm

__all__ = ["UNetSkip", "unet_generator"]


class UNetSkip(Module):
    """``y = concat(x, inner(x))`` along channels; backward returns ``dy_skip + d inner``.

    Gradient:
        with ``dy = [dy_skip, dy_inner]`` split at x's channel count:
        ``dx = dy_skip + inner.backward(dy_inner)``.
    """

    def __init__(self, inner):
        super().__init__()
        if not isinstance(inner, Module):
            raise TypeError(f"UNetSkip: inner must be a Module, got {type(inner).__name__}")
        self.inner = inner
        self.join = Concat(dim=1)

    def _label(self):
        return "UNetSkip"

    def forward(self, x):
        h = self.inner(x)
        if h.ndim != 4 or tuple(h.shape[2:]) != tuple(x.shape[2:]) or h.shape[0] != x.shape[0]:
            self.inner.clear_cache()
            raise ValueError(f"UNetSkip: the inner block maps shape {tuple(x.shape)} to "
                             f"{tuple(h.shape)}; a U-Net skip needs the same N, H and W")
        return self.join(x, h)

    def backward(self, dy):
        d_skip, d_inner = self.join.backward(dy)
        return d_skip + self.inner.backward(d_inner)


def unet_generator(in_channels, out_channels, levels, ngf=64, norm="batch", dropout=0.5,
                   n_dropout=3, rng=None, dropout_rng=None, dropout_in_eval=True):
    """pix2pix's U-Net for ``2^levels`` px images (levels >= 2). Channels double per level up to
    ``8 ngf``; the first ``n_dropout`` decoder layers (the paper's "CD512-CD512-CD512" decoder
    start; the authors' code skips the innermost one) apply dropout ``dropout``, which stays
    on in ``eval()`` when
    ``dropout_in_eval`` (the paper's noise: "dropout ... at both training and test time")."""
    if levels < 2:
        raise ValueError(f"unet_generator: levels must be >= 2, got {levels}")
    rng = _generator(rng)
    ch = [min(ngf * 2 ** i, 8 * ngf) for i in range(levels)]   # channels after each down step
    bias = norm != "batch"

    def norm_layer(c):
        n = make_norm(norm, c)
        return [n] if n is not None else []

    # innermost: ch[-2] -> ch[-1] (1x1) -> ch[-2]
    cin, cmid = ch[levels - 2], ch[levels - 1]
    drops = [0]

    def drop():
        if dropout and drops[0] < n_dropout:
            drops[0] += 1
            return [Dropout(dropout, rng=dropout_rng, active_in_eval=dropout_in_eval)]
        return []

    block = Sequential(LeakyReLU(0.2), Conv2d(cin, cmid, 4, 2, 1, bias=bias, rng=rng),
                       ReLU(), ConvTranspose2d(cmid, cin, 4, 2, 1, bias=bias, rng=rng),
                       *norm_layer(cin), *drop())
    block = UNetSkip(block)
    for i in range(levels - 2, 0, -1):        # middle levels, inside out
        cin, cmid = ch[i - 1], ch[i]
        up = [ReLU(), ConvTranspose2d(2 * cmid, cin, 4, 2, 1, bias=bias, rng=rng), *norm_layer(cin),
              *drop()]
        block = UNetSkip(Sequential(LeakyReLU(0.2), Conv2d(cin, cmid, 4, 2, 1, bias=bias, rng=rng),
                                    *norm_layer(cmid), block, *up))
    return Sequential(Conv2d(in_channels, ch[0], 4, 2, 1, bias=bias, rng=rng), block,
                      ReLU(), ConvTranspose2d(2 * ch[0], out_channels, 4, 2, 1, rng=rng), Tanh())
