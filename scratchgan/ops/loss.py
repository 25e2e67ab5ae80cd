"""Losses: adversarial objectives, reconstruction terms and KL divergences.

Every loss is a pair ``<name>_forward(...) -> (loss, cache)`` and
``<name>_backward(dloss, cache) -> grads``. ``loss`` is a 0-d array in the
input's dtype and on the input's device; ``dloss`` is the upstream gradient of
that scalar (1.0 when the loss is the final objective, or any scalar/0-d array).
``backward`` returns one gradient per differentiable input (a tuple when there
are several, in the order of the forward's arguments).

Numerical stability
-------------------
Probabilities never appear: the discriminator's output is kept as a *logit* l,
``D = sigma(l)``, and every ``log D`` or ``log(1 - D)`` is written with softplus:

    log sigma(l)       = -softplus(-l)
    log(1 - sigma(l))  = -softplus(l)
    softplus(l)        = max(l, 0) + log1p(exp(-|l|))

so no exponential of a positive number is taken and no log of a rounded-to-zero
probability is formed: logits of +-200 (or +-1e4) give finite losses and
gradients. The derivations are in ``docs/derivations/losses.md``.

Reductions
----------
* adversarial losses, ``bce_with_logits`` and ``mse``: mean over **all** elements
  (a D output of shape (N,) or (N, 1) gives the batch mean);
* ``gaussian_kl``, ``bernoulli_nll``, ``gaussian_nll``, ``gaussian_nll_fixed_std``:
  sum over every non-batch dimension, mean over the batch (dimension 0);
* ``softmax_cross_entropy``: mean over the batch.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import device_of, get_array_module, is_gpu_array
from ..validate import check_array
from .activation import sigmoid, softplus

_LOG_2PI = math.log(2.0 * math.pi)


# -- helpers --------------------------------------------------------------------
def _check(name, x, what, ndim=None):
    return check_array(name, x, ndim=ndim, what=what)


def _same_shape(name, a, b, what_a, what_b):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name}: {what_b} must have the shape of {what_a} {tuple(a.shape)}, "
                         f"got {tuple(b.shape)}")


def _same_device(name, a, b, what_a, what_b):
    if device_of(a) != device_of(b):
        raise ValueError(f"{name}: {what_a} is on {device_of(a)!r} but {what_b} is on "
                         f"{device_of(b)!r}; move one of them with scratchgan.backend.to_device")


def _same_dtype(name, a, b, what_a, what_b):
    if a.dtype != b.dtype:
        raise TypeError(f"{name}: {what_a} ({a.dtype}) and {what_b} ({b.dtype}) must have the "
                        "same dtype")


def _check_nonempty(name, x, what):
    if x.size == 0:
        raise ValueError(f"{name}: {what} is empty (shape {tuple(x.shape)}); a mean over "
                         "zero elements is undefined")


def _scalar(xp, value, dtype):
    """A 0-d array of ``dtype`` (``xp.mean`` of a NumPy array returns a NumPy scalar)."""
    return xp.asarray(value, dtype=dtype).reshape(())


def _upstream(dloss, xp, dtype, name):
    """The upstream gradient of a scalar loss: a NumPy scalar of ``dtype`` for a Python or
    NumPy number (a kernel argument on the GPU, so no host-to-device copy inside a step),
    else a 0-d array of ``dtype`` on the array's device."""
    if isinstance(dloss, (bool, str, bytes)):
        raise TypeError(f"{name}: the upstream gradient must be a number or a 0-d array, got "
                        f"{dloss!r}")
    if isinstance(dloss, (int, float, np.number)):
        return np.dtype(dtype).type(dloss)
    if np.ndim(dloss) != 0 and int(np.prod(np.shape(dloss))) != 1:
        raise ValueError(f"{name}: the loss is a scalar, so its upstream gradient must be a "
                         f"scalar or 0-d array, got shape {tuple(np.shape(dloss))}")
    return xp.asarray(dloss, dtype=dtype).reshape(())


def _batch(name, x, what):
    if x.ndim < 1:
        raise ValueError(f"{name}: {what} needs a batch dimension (at least 1-D), got a 0-d array")
    n = int(x.shape[0])
    if n == 0:
        raise ValueError(f"{name}: {what} has an empty batch (shape {tuple(x.shape)})")
    return n


def _per_sample_sum(xp, v):
    """Sum over every non-batch dimension: (N, ...) -> (N,)."""
    return v.reshape(v.shape[0], -1).sum(axis=1)


# -- fused GPU path for losses on logits -------------------------------------------
class _FusedLogitCache(tuple):
    """Cache of a loss on logits computed by one GPU launch: ``(grad,)``, where ``grad``
    is d loss / d logits for an upstream gradient of 1."""


def _fused_logit_loss(logits, t, sign):
    """GPU: ``(loss, cache)`` of ``sign * mean(softplus(l) - t l)`` from one launch
    (``kernels/loss.cu``), or None on the CPU (the NumPy formulas then run)."""
    if not is_gpu_array(logits):
        return None
    from ..cuda import loss as gpu_loss
    loss, grad, _ = gpu_loss.logit_bce(logits, t, sign)
    return loss, _FusedLogitCache((grad,))


def _fused_logit_backward(dloss, cache, name):
    (grad,) = cache
    xp = get_array_module(grad)
    g = _upstream(dloss, xp, grad.dtype, name)
    if isinstance(g, np.generic) and g == 1:
        return grad          # the cached gradient itself (callers never modify dy in place)
    return grad * g


# -- binary cross-entropy on logits ---------------------------------------------
def bce_with_logits_forward(logits, targets):
    """``mean( softplus(l) - t * l )`` = mean of ``-[t log sigma(l) + (1 - t) log(1 - sigma(l))]``.

    ``targets`` is an array of ``logits``' shape or a Python scalar (e.g. 1.0,
    0.0, or 0.9 for one-sided label smoothing); values in [0, 1].
    """
    name = "bce_with_logits"
    _check(name, logits, "logits")
    _check_nonempty(name, logits, "logits")
    xp = get_array_module(logits)
    if np.isscalar(targets) or (isinstance(targets, np.ndarray) and targets.ndim == 0):
        if isinstance(targets, (str, bytes)):
            raise TypeError(f"{name}: targets must be a number or an array, got {targets!r}")
        t = float(targets)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"{name}: a scalar target must lie in [0, 1], got {t}")
        fused = _fused_logit_loss(logits, t, 1.0)
        if fused is not None:
            return fused
    else:
        _check(name, targets, "targets")
        _same_device(name, logits, targets, "logits", "targets")
        _same_shape(name, logits, targets, "logits", "targets")
        t = targets.astype(logits.dtype, copy=False)
    loss = xp.mean(softplus(logits) - t * logits)
    return _scalar(xp, loss, logits.dtype), (logits, t)


def bce_with_logits_backward(dloss, cache):
    """``d/dl [softplus(l) - t l] = sigma(l) - t``, so ``dl = dloss * (sigma(l) - t) / n``.

    (``softplus'(l) = e^l / (1 + e^l) = sigma(l)``; n is the number of elements.)
    Only the logits get a gradient: the targets are data.
    """
    if isinstance(cache, _FusedLogitCache):
        return _fused_logit_backward(dloss, cache, "bce_with_logits")
    logits, t = cache
    xp = get_array_module(logits)
    g = _upstream(dloss, xp, logits.dtype, "bce_with_logits")
    return (sigmoid(logits) - t) * (g / logits.size)


# -- GAN discriminator ----------------------------------------------------------
def discriminator_loss_forward(real_logits, fake_logits):
    """``bce(real, 1) + bce(fake, 0) = mean softplus(-l_r) + mean softplus(l_f)``.

    This is ``-V(D, G)`` of GAN eq. 1 with ``D = sigma(l)``:
    ``-[mean log D(x) + mean log(1 - D(G(z)))]``; D ascends V by descending it.
    The two batches are averaged separately (their sizes may differ).
    """
    name = "discriminator_loss"
    _check(name, real_logits, "real_logits")
    _check(name, fake_logits, "fake_logits")
    _check_nonempty(name, real_logits, "real_logits")
    _check_nonempty(name, fake_logits, "fake_logits")
    _same_device(name, real_logits, fake_logits, "real_logits", "fake_logits")
    _same_dtype(name, real_logits, fake_logits, "real_logits", "fake_logits")
    xp = get_array_module(real_logits)
    loss = xp.mean(softplus(-real_logits)) + xp.mean(softplus(fake_logits))
    return _scalar(xp, loss, real_logits.dtype), (real_logits, fake_logits)


def discriminator_loss_backward(dloss, cache):
    """``d/dl softplus(-l) = -sigma(-l) = sigma(l) - 1`` and ``d/dl softplus(l) = sigma(l)``:

    ``dreal = dloss * (sigma(l_r) - 1) / n_r``, ``dfake = dloss * sigma(l_f) / n_f``.
    """
    real, fake = cache
    xp = get_array_module(real)
    g = _upstream(dloss, xp, real.dtype, "discriminator_loss")
    dreal = -sigmoid(-real) * (g / real.size)
    dfake = sigmoid(fake) * (g / fake.size)
    return dreal, dfake


# -- GAN generator objectives ------------------------------------------------------
def _gen_check(name, fake_logits):
    _check(name, fake_logits, "fake_logits")
    _check_nonempty(name, fake_logits, "fake_logits")
    return get_array_module(fake_logits)


def generator_minimax_loss_forward(fake_logits):
    """Minimax (saturating) G objective: ``mean log(1 - D(G(z))) = -mean softplus(l)``.

    G *minimizes* this. It is the term of V that depends on G.
    """
    xp = _gen_check("generator_minimax_loss", fake_logits)
    fused = _fused_logit_loss(fake_logits, 0.0, -1.0)
    if fused is not None:
        return fused
    loss = -xp.mean(softplus(fake_logits))
    return _scalar(xp, loss, fake_logits.dtype), fake_logits


def generator_minimax_loss_backward(dloss, cache):
    """``d/dl log(1 - sigma(l)) = d/dl [-softplus(l)] = -sigma(l)``: ``dl = -dloss sigma(l) / n``.

    When D confidently rejects fakes (l -> -inf, D(G(z)) -> 0) this gradient
    vanishes like ``-e^l``: the saturation that motivates the non-saturating loss.
    """
    if isinstance(cache, _FusedLogitCache):
        return _fused_logit_backward(dloss, cache, "generator_minimax_loss")
    fake = cache
    xp = get_array_module(fake)
    g = _upstream(dloss, xp, fake.dtype, "generator_minimax_loss")
    return -sigmoid(fake) * (g / fake.size)


def generator_nonsaturating_loss_forward(fake_logits):
    """Non-saturating G objective: ``mean -log D(G(z)) = mean softplus(-l)`` (= bce(fake, 1))."""
    xp = _gen_check("generator_nonsaturating_loss", fake_logits)
    fused = _fused_logit_loss(fake_logits, 1.0, 1.0)    # softplus(-l) = softplus(l) - l
    if fused is not None:
        return fused
    loss = xp.mean(softplus(-fake_logits))
    return _scalar(xp, loss, fake_logits.dtype), fake_logits


def generator_nonsaturating_loss_backward(dloss, cache):
    """``d/dl [-log sigma(l)] = d/dl softplus(-l) = -sigma(-l) = sigma(l) - 1``.

    ``dl = dloss * (sigma(l) - 1) / n``, which tends to ``-1/n`` (not 0) as
    D(G(z)) -> 0: G keeps a strong gradient early in training.
    """
    if isinstance(cache, _FusedLogitCache):
        return _fused_logit_backward(dloss, cache, "generator_nonsaturating_loss")
    fake = cache
    xp = get_array_module(fake)
    g = _upstream(dloss, xp, fake.dtype, "generator_nonsaturating_loss")
    return -sigmoid(-fake) * (g / fake.size)


def generator_logratio_loss_forward(fake_logits):
    """Log-ratio G objective: ``mean -log(D / (1 - D)) = -mean l``.

    Since ``log sigma(l) - log(1 - sigma(l)) = l``, the D/(1-D) ratio is just the
    logit; this is the sum of the minimax and non-saturating objectives.
    """
    xp = _gen_check("generator_logratio_loss", fake_logits)
    loss = -xp.mean(fake_logits)
    return _scalar(xp, loss, fake_logits.dtype), fake_logits


def generator_logratio_loss_backward(dloss, cache):
    """``d/dl (-l) = -1``: ``dl = -dloss / n`` everywhere (it never saturates)."""
    fake = cache
    xp = get_array_module(fake)
    g = _upstream(dloss, xp, fake.dtype, "generator_logratio_loss")
    return xp.full(fake.shape, -1, dtype=fake.dtype) * (g / fake.size)


GENERATOR_LOSSES = {
    "minimax": (generator_minimax_loss_forward, generator_minimax_loss_backward),
    "nonsaturating": (generator_nonsaturating_loss_forward, generator_nonsaturating_loss_backward),
    "logratio": (generator_logratio_loss_forward, generator_logratio_loss_backward),
}


def get_generator_loss(name):
    """``(forward, backward)`` for a generator objective; a ValueError lists the choices."""
    try:
        return GENERATOR_LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown generator loss {name!r}; valid choices are "
                         f"{sorted(GENERATOR_LOSSES)}") from None


# -- Wasserstein (WGAN) ------------------------------------------------------------
def wasserstein_critic_loss_forward(real_scores, fake_scores):
    """``mean f(G(z)) - mean f(x)``: the critic minimizes it, i.e. maximizes the
    Kantorovich-Rubinstein estimate ``mean f(x) - mean f(G(z))`` of W(P_r, P_g).
    Scores are unbounded reals, not logits.
    """
    name = "wasserstein_critic_loss"
    _check(name, real_scores, "real_scores")
    _check(name, fake_scores, "fake_scores")
    _check_nonempty(name, real_scores, "real_scores")
    _check_nonempty(name, fake_scores, "fake_scores")
    _same_device(name, real_scores, fake_scores, "real_scores", "fake_scores")
    _same_dtype(name, real_scores, fake_scores, "real_scores", "fake_scores")
    xp = get_array_module(real_scores)
    loss = xp.mean(fake_scores) - xp.mean(real_scores)
    return _scalar(xp, loss, real_scores.dtype), (real_scores, fake_scores)


def wasserstein_critic_loss_backward(dloss, cache):
    """Linear in the scores: ``dreal = -dloss / n_r``, ``dfake = +dloss / n_f``."""
    real, fake = cache
    xp = get_array_module(real)
    g = _upstream(dloss, xp, real.dtype, "wasserstein_critic_loss")
    dreal = xp.full(real.shape, -1, dtype=real.dtype) * (g / real.size)
    dfake = xp.full(fake.shape, 1, dtype=fake.dtype) * (g / fake.size)
    return dreal, dfake


def wasserstein_generator_loss_forward(fake_scores):
    """``-mean f(G(z))``: G raises the critic's score of its samples."""
    name = "wasserstein_generator_loss"
    _check(name, fake_scores, "fake_scores")
    _check_nonempty(name, fake_scores, "fake_scores")
    xp = get_array_module(fake_scores)
    return _scalar(xp, -xp.mean(fake_scores), fake_scores.dtype), fake_scores


def wasserstein_generator_loss_backward(dloss, cache):
    """``dfake = -dloss / n``."""
    fake = cache
    xp = get_array_module(fake)
    g = _upstream(dloss, xp, fake.dtype, "wasserstein_generator_loss")
    return xp.full(fake.shape, -1, dtype=fake.dtype) * (g / fake.size)


# -- softmax cross-entropy --------------------------------------------------------
def softmax_cross_entropy_forward(logits, labels):
    """``mean_n [ logsumexp(l_n) - l_{n, y_n} ]`` for logits (N, K) and int labels (N,).

    The log-sum-exp subtracts the row max first, so no exponent is positive.
    """
    name = "softmax_cross_entropy"
    _check(name, logits, "logits", ndim=2)
    n, k = logits.shape
    if n == 0 or k == 0:
        raise ValueError(f"{name}: logits must be (N, K) with N, K >= 1, got {tuple(logits.shape)}")
    try:
        ldev = device_of(labels)
    except TypeError:
        raise TypeError(f"{name}: expected labels to be a numpy or cupy integer array, "
                        f"got {type(labels).__name__}") from None
    if ldev != device_of(logits):
        raise ValueError(f"{name}: logits are on {device_of(logits)!r} but labels are on {ldev!r}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class labels, got dtype {labels.dtype}")
    if tuple(labels.shape) != (n,):
        raise ValueError(f"{name}: expected labels of shape ({n},) for logits {tuple(logits.shape)}, "
                         f"got {tuple(labels.shape)}")
    xp = get_array_module(logits)
    if xp is np:  # device labels are not read back: that would synchronise the step
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= k:
            raise ValueError(f"{name}: labels must lie in [0, {k - 1}] for {k} classes, "
                             f"got values in [{lo}, {hi}]")
    m = logits.max(axis=1, keepdims=True)
    shifted = logits - m
    lse = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - lse                         # log softmax, (N, K)
    rows = xp.arange(n)
    loss = -xp.mean(log_p[rows, labels])
    return _scalar(xp, loss, logits.dtype), (log_p, labels)


def softmax_cross_entropy_backward(dloss, cache):
    """``d/dl_j [logsumexp(l) - l_y] = softmax(l)_j - 1[j = y]``: ``dl = dloss (p - onehot(y)) / N``."""
    log_p, labels = cache
    xp = get_array_module(log_p)
    g = _upstream(dloss, xp, log_p.dtype, "softmax_cross_entropy")
    n = log_p.shape[0]
    d = xp.exp(log_p)
    d[xp.arange(n), labels] -= 1
    return d * (g / n)


# -- mean squared error -----------------------------------------------------------
def mse_forward(pred, target):
    """``mean (pred - target)^2`` over all elements."""
    name = "mse"
    _check(name, pred, "pred")
    _check(name, target, "target")
    _check_nonempty(name, pred, "pred")
    _same_device(name, pred, target, "pred", "target")
    _same_shape(name, pred, target, "pred", "target")
    xp = get_array_module(pred)
    diff = pred - target.astype(pred.dtype, copy=False)
    return _scalar(xp, xp.mean(diff * diff), pred.dtype), diff


def mse_backward(dloss, cache):
    """``d/dp (p - t)^2 = 2 (p - t)``: ``dpred = dloss * 2 (p - t) / n``. The target is data."""
    diff = cache
    xp = get_array_module(diff)
    g = _upstream(dloss, xp, diff.dtype, "mse")
    return diff * (2 * g / diff.size)


# -- Gaussian KL (VAE) -------------------------------------------------------------
def gaussian_kl_forward(mu, logvar):
    """``KL(N(mu, diag e^logvar) || N(0, I)) = 1/2 sum_d (e^logvar + mu^2 - 1 - logvar)``,

    summed over every non-batch dimension, averaged over the batch (dim 0).
    """
    name = "gaussian_kl"
    _check(name, mu, "mu")
    _check(name, logvar, "logvar")
    _same_device(name, mu, logvar, "mu", "logvar")
    _same_shape(name, mu, logvar, "mu", "logvar")
    _same_dtype(name, mu, logvar, "mu", "logvar")
    n = _batch(name, mu, "mu")
    xp = get_array_module(mu)
    var = xp.exp(logvar)
    per = 0.5 * _per_sample_sum(xp, var + mu * mu - 1 - logvar)
    return _scalar(xp, per.sum() / n, mu.dtype), (mu, var, n)


def gaussian_kl_backward(dloss, cache):
    """``dKL/dmu = mu``, ``dKL/dlogvar = (e^logvar - 1) / 2``, each times ``dloss / N``."""
    mu, var, n = cache
    xp = get_array_module(mu)
    g = _upstream(dloss, xp, mu.dtype, "gaussian_kl")
    s = g / n
    return mu * s, (0.5 * (var - 1)) * s


# -- Bernoulli NLL (VAE decoder on [0, 1] data) ------------------------------------
def bernoulli_nll_forward(logits, x):
    """``-sum_d [x log sigma(l) + (1 - x) log(1 - sigma(l))] = sum_d [softplus(l) - x l]``,

    averaged over the batch. ``x`` may be any values in [0, 1] (grey levels):
    then this is the cross-entropy, whose minimum over l is the entropy of x, not 0.
    """
    name = "bernoulli_nll"
    _check(name, logits, "logits")
    _check(name, x, "x")
    _same_device(name, logits, x, "logits", "x")
    _same_shape(name, logits, x, "logits", "x")
    n = _batch(name, logits, "logits")
    xp = get_array_module(logits)
    x = x.astype(logits.dtype, copy=False)
    total = xp.sum(softplus(logits) - x * logits)
    return _scalar(xp, total / n, logits.dtype), (logits, x, n)


def bernoulli_nll_backward(dloss, cache):
    """``d/dl [softplus(l) - x l] = sigma(l) - x``: ``dlogits = dloss (sigma(l) - x) / N``."""
    logits, x, n = cache
    xp = get_array_module(logits)
    g = _upstream(dloss, xp, logits.dtype, "bernoulli_nll")
    return (sigmoid(logits) - x) * (g / n)


# -- Gaussian NLL ----------------------------------------------------------------------
def gaussian_nll_forward(mean, logvar, x):
    """``-sum_d log N(x; mean, e^logvar) = 1/2 sum_d [log 2 pi + logvar + (x - mean)^2 e^-logvar]``,

    averaged over the batch. The constant ``log 2 pi`` is included, so the value
    is a true negative log-density (nats).
    """
    name = "gaussian_nll"
    for a, w in ((mean, "mean"), (logvar, "logvar"), (x, "x")):
        _check(name, a, w)
    _same_device(name, mean, logvar, "mean", "logvar")
    _same_device(name, mean, x, "mean", "x")
    _same_shape(name, mean, logvar, "mean", "logvar")
    _same_shape(name, mean, x, "mean", "x")
    _same_dtype(name, mean, logvar, "mean", "logvar")
    n = _batch(name, mean, "mean")
    xp = get_array_module(mean)
    diff = x.astype(mean.dtype, copy=False) - mean
    inv_var = xp.exp(-logvar)
    total = 0.5 * xp.sum(_LOG_2PI + logvar + diff * diff * inv_var)
    return _scalar(xp, total / n, mean.dtype), (diff, inv_var, n)


def gaussian_nll_backward(dloss, cache):
    """With ``r = x - mean`` and ``w = e^-logvar``:

    ``d/dmean = -r w``; ``d/dlogvar = 1/2 (1 - r^2 w)`` (since ``d e^-s/ds = -e^-s``);
    each times ``dloss / N``. Returns ``(dmean, dlogvar)``; x is data.
    """
    diff, inv_var, n = cache
    xp = get_array_module(diff)
    g = _upstream(dloss, xp, diff.dtype, "gaussian_nll")
    s = g / n
    dmean = -(diff * inv_var) * s
    dlogvar = (0.5 * (1 - diff * diff * inv_var)) * s
    return dmean, dlogvar


def gaussian_nll_fixed_std_forward(mean, x, std=1.0):
    """``sum_d [ (x - mean)^2 / (2 std^2) + log std + 1/2 log 2 pi ]``, averaged over the batch.

    InfoGAN's continuous-code term: Q predicts the mean, the std is fixed (1).
    """
    name = "gaussian_nll_fixed_std"
    _check(name, mean, "mean")
    _check(name, x, "x")
    _same_device(name, mean, x, "mean", "x")
    _same_shape(name, mean, x, "mean", "x")
    if isinstance(std, bool) or not isinstance(std, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: std must be a positive number, got {std!r}")
    std = float(std)
    if not (std > 0 and math.isfinite(std)):
        raise ValueError(f"{name}: std must be a finite number > 0, got {std!r}")
    n = _batch(name, mean, "mean")
    xp = get_array_module(mean)
    diff = x.astype(mean.dtype, copy=False) - mean
    const = mean.size * (math.log(std) + 0.5 * _LOG_2PI)
    total = xp.sum(diff * diff) / (2 * std * std) + const
    return _scalar(xp, total / n, mean.dtype), (diff, std, n)


def gaussian_nll_fixed_std_backward(dloss, cache):
    """``d/dmean (x - mean)^2 / (2 s^2) = -(x - mean) / s^2``: ``dmean = -dloss (x - mean) / (s^2 N)``."""
    diff, std, n = cache
    xp = get_array_module(diff)
    g = _upstream(dloss, xp, diff.dtype, "gaussian_nll_fixed_std")
    return -diff * (g / (n * std * std))


__all__ = [
    "bce_with_logits_forward", "bce_with_logits_backward",
    "discriminator_loss_forward", "discriminator_loss_backward",
    "generator_minimax_loss_forward", "generator_minimax_loss_backward",
    "generator_nonsaturating_loss_forward", "generator_nonsaturating_loss_backward",
    "generator_logratio_loss_forward", "generator_logratio_loss_backward",
    "GENERATOR_LOSSES", "get_generator_loss",
    "wasserstein_critic_loss_forward", "wasserstein_critic_loss_backward",
    "wasserstein_generator_loss_forward", "wasserstein_generator_loss_backward",
    "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
    "mse_forward", "mse_backward",
    "gaussian_kl_forward", "gaussian_kl_backward",
    "bernoulli_nll_forward", "bernoulli_nll_backward",
    "gaussian_nll_forward", "gaussian_nll_backward",
    "gaussian_nll_fixed_std_forward", "gaussian_nll_fixed_std_backward",
]
