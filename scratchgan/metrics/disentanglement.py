"""The β-VAE disentanglement metric (Higgins et al. 2017, Sec. 3 and Appendix A.4).

Protocol, for each of ``n_train + n_eval`` points:

1. choose a factor k uniformly among the ``K`` generative factors;
2. draw ``L`` pairs of factor vectors (v1, v2), each factor uniform over its values, and set
   v2[k] = v1[k] (the pair shares factor k and nothing else on purpose);
3. render both images of each pair and encode them with the encoder's **means** z = mu(x);
4. the point's feature is ``z_diff = (1/L) sum_l |z1_l - z2_l|`` (one value per latent), its
   label k.

A linear classifier (multinomial logistic regression, :class:`LinearSoftmax`, written here:
Newton's method on the mean cross-entropy with a small L2 penalty, features standardised by
the training points' mean and standard deviation) is fitted on the ``n_train`` training
points; the score is its accuracy on the ``n_eval`` evaluation points. The paper's setting,
and the defaults: L = 64, 10,000 training and 5,000 evaluation points. Chance is 1/K (20 %
on dSprites' five factors). A representation in which one latent codes factor k alone gives
z_diff[j] = 0 exactly for that latent, so the factor can be read off linearly: scores near
100 %. A caveat (Kim & Mnih 2018): the score can reach 100 % when only K - 1 factors are
disentangled, since the last one is then the class left over.

Nothing here knows about a model or a data set: ``encode(images) -> (n, d)`` array (NumPy or
CuPy) and ``images(classes) -> images`` (classes: int array (n, K) of factor indices) are
callables, so the same code scores a β-VAE on dSprites-like images, or a known-case
"encoder" in the tests.

Evaluators: ``beta-vae-metric`` (the score above, in %, on the dSprites-like set of
:mod:`scratchgan.data.dsprites`, images rendered on the model's device; metric seed = the
run's seed) and ``latent-kl`` (the KL of q(z|x) to the prior per latent, averaged over
training images, and how many latents carry more than ``active_nats``: which latents the model
uses).
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..data import dsprites as D
from .evaluators import EvalContext, evaluator

__all__ = ["PAPER", "pair_features", "LinearSoftmax", "beta_vae_metric",
           "per_latent_kl", "beta_vae_metric_evaluator", "latent_kl_evaluator"]

__all__ = ["PAPER", "pair_features", "LinearSoftmax", "beta_vae_metric"]

PAPER = {"L": 64, "n_train": 10_000, "n_eval": 5_000}


def pair_features(encode, images, factor_sizes, n_points, rng, L=64, batch_points=64):
    """``(features (n_points, d) float64, labels (n_points,) int64)`` by the protocol above.

    ``rng``: a NumPy Generator (or int seed) for k and the factor draws. Points are made
    ``batch_points`` at a time (``2 * L * batch_points`` images per ``images``/``encode``
    call).
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    K = len(sizes)
    if K < 2:
        raise ValueError(f"pair_features: needs at least 2 factors, got factor_sizes {factor_sizes}")
    if int(L) < 1 or int(n_points) < 1:
        raise ValueError(f"pair_features: L and n_points must be >= 1, got L={L}, n={n_points}")
    labels = rng.integers(0, K, size=int(n_points))
    feats = []
    for lo in range(0, int(n_points), int(batch_points)):
        k = labels[lo:lo + int(batch_points)]
        b = len(k)
        v1 = (rng.random((b, L, K)) * sizes).astype(np.int64)
        v2 = (rng.random((b, L, K)) * sizes).astype(np.int64)
        v2[np.arange(b), :, k] = v1[np.arange(b), :, k]          # the shared factor
        x = images(np.concatenate([v1.reshape(-1, K), v2.reshape(-1, K)]))
        z = encode(x)
        n = b * L
        diff = abs(z[:n] - z[n:]).reshape(b, L, -1).mean(axis=1)  # on z's device
        feats.append(np.asarray(to_numpy(diff), dtype=np.float64))
    return np.concatenate(feats), labels.astype(np.int64)


class LinearSoftmax:
    """Multinomial logistic regression: p(k|f) = softmax(W f + b)_k, fitted by Newton's method.

    Minimises mean_n CE(y_n, softmax(W f_n + b)) + (l2/2) ||W||^2 (b is not penalised) on
    standardised features. Gradient and Hessian (P the softmax probabilities, Y one-hot,
    f~ = [f, 1]):  g = (1/N) sum_n (P_n - Y_n) f~_n^T + l2 [W, 0];
    H = (1/N) sum_n (diag(P_n) - P_n P_n^T) (x) f~_n f~_n^T + l2 (I on W's entries).
    The softmax's shift direction (all rows of [W, b] moved together) leaves the loss
    unchanged, so the Hessian is singular there; a tiny ridge (1e-8) on the bias keeps the
    Newton system solvable. Each Newton step halves its length until the objective drops.
    """

    def __init__(self, l2=1e-4, max_iter=100, tol=1e-10):
        self.l2, self.max_iter, self.tol = float(l2), int(max_iter), float(tol)

    def _standardise(self, f):
        return (f - self.mean_) / self.scale_

    @staticmethod
    def _log_softmax(a):
        a = a - a.max(axis=1, keepdims=True)
        return a - np.log(np.exp(a).sum(axis=1, keepdims=True))

    def _objective(self, theta, F, Y):
        logp = self._log_softmax(F @ theta.T)
        return -(Y * logp).sum() / len(F) + 0.5 * self.l2 * (theta[:, :-1] ** 2).sum()

    def fit(self, features, labels, num_classes=None):
        f = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels, dtype=np.int64)
        if f.ndim != 2 or len(f) != len(y):
            raise ValueError(f"LinearSoftmax.fit: expected features (n, d) and labels (n,), got "
                             f"{f.shape} and {y.shape}")
        K = int(num_classes or y.max() + 1)
        self.mean_ = f.mean(axis=0)
        self.scale_ = f.std(axis=0)
        self.scale_[self.scale_ < 1e-12] = 1.0
        F = np.concatenate([self._standardise(f), np.ones((len(f), 1))], axis=1)
        n, d1 = F.shape
        Y = np.eye(K)[y]
        theta = np.zeros((K, d1))
        ridge = np.full((K, d1), self.l2)
        ridge[:, -1] = 1e-8
        obj = self._objective(theta, F, Y)
        self.n_iter_ = 0
        for it in range(self.max_iter):
            P = np.exp(self._log_softmax(F @ theta.T))
            G = (P - Y).T @ F / n + ridge * theta
            # H[(a,i),(b,j)] = (1/n) sum_n (P_a delta_ab - P_a P_b) F_i F_j + ridge
            W = np.einsum("na,ab->nab", P, np.eye(K)) - np.einsum("na,nb->nab", P, P)
            H = np.einsum("nab,ni,nj->aibj", W, F, F, optimize=True).reshape(K * d1, K * d1) / n
            H[np.diag_indices_from(H)] += ridge.ravel()
            step = np.linalg.solve(H, G.ravel()).reshape(K, d1)
            t = 1.0
            while True:
                cand = theta - t * step
                new = self._objective(cand, F, Y)
                if new <= obj or t < 1e-8:
                    break
                t *= 0.5
            theta, done = cand, obj - new < self.tol
            obj = new
            self.n_iter_ = it + 1
            if done:
                break
        self.coef_, self.intercept_ = theta[:, :-1], theta[:, -1]
        self.objective_ = obj
        return self

    def decision_function(self, features):
        return self._standardise(np.asarray(features, np.float64)) @ self.coef_.T + self.intercept_

    def predict(self, features):
        return self.decision_function(features).argmax(axis=1)

    def score(self, features, labels):
        return float((self.predict(features) == np.asarray(labels)).mean())


def beta_vae_metric(encode, images, factor_sizes, seed=0, L=PAPER["L"],
                    n_train=PAPER["n_train"], n_eval=PAPER["n_eval"], batch_points=64,
                    classifier=None):
    """The β-VAE disentanglement score: ``{"eval_accuracy", "train_accuracy", "L", "n_train",
    "n_eval", "num_factors", "chance", "seed"}`` (accuracies in [0, 1]).

    Training and evaluation points come from one generator seeded by ``seed``, drawn in that
    order (training points first)."""
    rng = np.random.default_rng(seed)
    f_tr, y_tr = pair_features(encode, images, factor_sizes, n_train, rng, L, batch_points)
    f_ev, y_ev = pair_features(encode, images, factor_sizes, n_eval, rng, L, batch_points)
    clf = classifier if classifier is not None else LinearSoftmax()
    clf.fit(f_tr, y_tr, num_classes=len(factor_sizes))
    return {"eval_accuracy": clf.score(f_ev, y_ev), "train_accuracy": clf.score(f_tr, y_tr),
            "L": int(L), "n_train": int(n_train), "n_eval": int(n_eval),
            "num_factors": len(factor_sizes), "chance": 1.0 / len(factor_sizes),
            "seed": int(seed)}


def per_latent_kl(mu, log_std):
    """Mean over rows of KL(N(mu, e^{2 log_std}) || N(0, 1)) per latent (host float64, (d,))."""
    mu = np.asarray(to_numpy(mu), dtype=np.float64)
    ls = np.asarray(to_numpy(log_std), dtype=np.float64)
    return (0.5 * (np.exp(2 * ls) + mu ** 2 - 1 - 2 * ls)).mean(axis=0)


@evaluator("beta-vae-metric")
def beta_vae_metric_evaluator(ctx: EvalContext, L=PAPER["L"], n_train=PAPER["n_train"],
                              n_eval=PAPER["n_eval"], batch_points=64):
    """``disentanglement_metric`` (evaluation accuracy, %) and ``disentanglement_metric_train``
    of the model's posterior means (``model.encode``) on the dSprites-like set. A dry run
    (``ctx.standin``) scores at most L = 4, 100 training and 50 evaluation points."""
    if ctx.data.get("name") != "dsprites":
        raise ValueError(f"beta-vae-metric: scores models of the dSprites-like set (dataset "
                         f"'dsprites'), got {ctx.data.get('name')!r}")
    m = ctx.model
    xp = m.xp
    if ctx.standin:              # a dry run: its figures are never recorded, keep it quick
        L, n_train, n_eval = min(int(L), 4), min(int(n_train), 100), min(int(n_eval), 50)

    def images(classes):
        return D.render_classes(classes, xp=xp).astype(np.float32)[:, None]

    r = beta_vae_metric(m.encode, images, D.FACTOR_SIZES, seed=ctx.seed, L=int(L),
                        n_train=int(n_train), n_eval=int(n_eval),
                        batch_points=int(batch_points))
    return {"disentanglement_metric": 100.0 * r["eval_accuracy"],
            "disentanglement_metric_train": 100.0 * r["train_accuracy"],
            "chance": 100.0 * r["chance"]}


@evaluator("latent-kl")
def latent_kl_evaluator(ctx: EvalContext, n_images=1024, active_nats=0.1):
    """``kl_per_latent`` (nats, from ``model.posterior(x) -> (mu, log_std)`` on ``n_images``
    training images drawn by ``ctx.rng(29)``), ``kl_total`` and ``active_latents`` (latents
    above ``active_nats``)."""
    m = ctx.model
    if not hasattr(m, "posterior"):
        raise ValueError(f"latent-kl: {type(m).__name__} has no posterior(x)")
    x = ctx.data["x_train"]
    n = min(int(n_images), len(x))
    if n < 1:
        raise ValueError(f"latent-kl: needs n_images >= 1 and training images, got {n_images} "
                         f"and {len(x)}")
    idx = np.sort(ctx.rng(29).choice(len(x), n, replace=False))
    kl = per_latent_kl(*m.posterior(np.asarray(x[idx], dtype=np.float32)))
    return {"kl_per_latent": [float(v) for v in kl], "kl_total": float(kl.sum()),
            "active_latents": int((kl > float(active_nats)).sum())}
