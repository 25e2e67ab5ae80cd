"""Semi-supervised learning with deep generative models: M2 and M1+M2 (Kingma, Rezende,
Mohamed & Welling 2014).

Generative model M2: p(y) = Cat(1/10), p(z) = N(0, I), p(x|y, z) = Bernoulli(sigmoid(D([z, y])))
(or, on M1 features, a diagonal Gaussian). Inference: q(z|x, y) = N(mu, diag e^lv) = E([x, y]),
q(y|x) = Cat(softmax(C(x))) (the classifier). One hidden layer of 500 softplus units per MLP,
z of 50 dimensions, Adam 3e-4 (the paper's settings). Initialisation as the authors' code
(dpkingma/nips14-ssl): weights and biases N(0, 0.001^2), the log-variance outputs' weights and
biases 0 (``init_std=None``: the library's U(+-1/sqrt(fan_in)) instead). The authors' N(0, 1)
prior on the weights (a weight decay of 1/N) is not used.

Bounds (eq. 6-8; l(x, y) = -L(x, y), the per-example loss, analytic KL):
    l(x, y)  = -log p(x|y, z) + KL(q(z|x,y) || N(0, I)) + log 10,     z = mu + sigma eps
    -U(x)    = sum_y pi_y l(x, y) - H(pi) = sum_y pi_y [l(x, y) + log pi_y],  pi = q(y|x)
    J^alpha  = sum_labelled l + sum_unlabelled (-U) + alpha sum_labelled -log q(y|x)
with alpha = 0.1 N / N_l: the paper's "alpha = 0.1 N" on the mean over labelled pairs, which
the authors' code applies as 0.1 n_total / n_labelled on the sum. Divided by N = N_l + N_u, the
loss descended per step is
    (N_l/N) mean_l l(x, y) + (N_u/N) mean_u -U(x) + 0.1 mean_l -log q(y|x).
The unlabelled set is the whole training set the trainer iterates over (N_u of it); the
labelled set is ``n_labels`` examples, ``n_labels / 10`` per class, chosen by ``label_seed``
(:meth:`M2.attach_data`, which ``scratchgan.train.Trainer`` calls with the training set), held
on the device and drawn from with ``self.random`` (``labelled_batch`` rows a step, with
replacement): each step is one labelled minibatch and one unlabelled minibatch.

Gradients of -U (derivation in docs/derivations/cvae_m2.md): d(-U)/d l(x, y) = pi_y, and with
g_y = l(x, y) + log pi_y, through the softmax, d(-U)/d a_j = pi_j (g_j - sum_y pi_y g_y) for
the classifier's logits a. The sum over all 10 classes is one pass of the encoder and decoder
over the batch repeated 10 times (row c*M + i holds example i with class c).

``features="m1"`` (M1+M2, the paper's best result): M1 is a VAE 784 -> 500 -> 500 -> z1 (50)
-> 500 -> 500 -> 784 (softplus, Bernoulli), trained first for ``m1_steps`` steps on the
unlabelled data; M2 then models z1 ~ q(z1|x) (a fresh sample each step; the posterior mean at
test time) with a Gaussian p(z1|y, z2) = N(mu, diag e^lv). M1 is frozen in the second phase.
``m1_min_std`` (the authors' ``run_2layer_ssl.py``: 0.1) keeps only the M1 latent dimensions
whose posterior means vary over the training set, std(mu1) > m1_min_std: when the M2 phase
starts (:meth:`M2.apply_schedule`), the standard deviation of mu1 over the training set the
trainer attached is computed once and the other dimensions are masked to 0 in the features
and left out of the Gaussian likelihood (the same model as M2 on the kept dimensions alone;
the kept dimensions are part of the checkpoint). None keeps every dimension.
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..backend import to_numpy
from ..nn.module import no_grad
from ..ops import loss as L
from ..ops.activation import sigmoid, softplus
from ..optim import Adam
from .base import GenerativeModel

__all__ = ["select_labelled", "M2"]

_LOG_2PI = math.log(2.0 * math.pi)


def select_labelled(y, n_labels, seed):
    """Indices of ``n_labels`` examples, ``n_labels / K`` of each of the K classes present in
    ``y``, drawn without replacement by ``numpy.random.default_rng(seed)`` (sorted per class,
    classes in order)."""
    y = np.asarray(y)
    classes = np.unique(y)
    if n_labels % len(classes):
        raise ValueError(f"M2: n_labels ({n_labels}) must be a multiple of the number of classes "
                         f"({len(classes)}) to take the same number of each")
    per = n_labels // len(classes)
    g = np.random.default_rng(seed)
    out = []
    for c in classes:
        pool = np.flatnonzero(y == c)
        if len(pool) < per:
            raise ValueError(f"M2: class {c} has {len(pool)} examples, fewer than the {per} "
                             f"labelled ones asked for")
        out.append(np.sort(g.choice(pool, size=per, replace=False)))
    return np.concatenate(out)


class M2(GenerativeModel):
    name = "m2"
    data_range = (0.0, 1.0)
    default_dataset = "mnist"
    conditional = False
    defaults = {
        "batch_size": 100, "epochs": 3000, "dataset": "mnist",
        "n_labels": 100, "label_seed": 0, "labelled_batch": 100,
        "hidden": 500, "latent_dim": 50, "lr": 3e-4, "alpha": 0.1,
        "features": "pixels",          # "pixels" (M2) | "m1" (M1+M2)
        "m1_hidden": 500, "m1_latent": 50, "m1_steps": 60000,
        "m1_min_std": None,            # keep M1 dims with std(mu1) above it (authors: 0.1)
        "init_std": 1e-3,              # N(0, std^2) weights, log-variance heads at 0 (None: U(+-1/sqrt(fan_in)))
    }

    def build(self):
        hp, r = self.hp, self.rng
        if hp["features"] not in ("pixels", "m1"):
            raise ValueError(f"M2: features must be 'pixels' (M2) or 'm1' (M1+M2), got "
                             f"{hp['features']!r}")
        if int(hp["labelled_batch"]) < 1 or int(hp["n_labels"]) < self.num_classes:
            raise ValueError(f"M2: labelled_batch must be >= 1 and n_labels >= num_classes "
                             f"({self.num_classes}), got {hp['labelled_batch']}, {hp['n_labels']}")
        if int(hp["n_labels"]) % self.num_classes:
            raise ValueError(f"M2: n_labels ({hp['n_labels']}) must be a multiple of the number "
                             f"of classes ({self.num_classes}): n_labels / K labelled per class")
        a = hp["alpha"]
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not (math.isfinite(a)
                                                                          and a >= 0):
            raise ValueError(f"M2: alpha (the weight on the labelled cross-entropy; the paper's "
                             f"0.1) must be a finite number >= 0, got {a!r}")
        K, h, k = self.num_classes, hp["hidden"], hp["latent_dim"]
        self.pixels = math.prod(self.data_shape)
        if hp["features"] == "m1":
            mh, mk = hp["m1_hidden"], hp["m1_latent"]
            self.m1_encoder = nn.mlp([self.pixels, mh, mh, 2 * mk], r, activation=nn.Softplus)
            self.m1_decoder = nn.mlp([mk, mh, mh, self.pixels], r, activation=nn.Softplus)
            d, out = mk, 2 * mk                       # Gaussian p(z1|y, z2): mean and log-variance
        else:
            d, out = self.pixels, self.pixels         # Bernoulli logits
        self.feat_dim = d
        self.classifier = nn.mlp([d, h, K], r, activation=nn.Softplus)
        self.encoder = nn.mlp([d + K, h, 2 * k], r, activation=nn.Softplus)
        self.decoder = nn.mlp([k + K, h, out], r, activation=nn.Softplus)
        if hp["init_std"] is not None:
            from ..init import mlp_init_normal_
            for net in self.networks().values():
                mlp_init_normal_(net, float(hp["init_std"]), r)
            # the authors' code starts every log-variance output at 0 (weights and bias)
            heads = [(self.encoder[-1], k)]
            if hp["features"] == "m1":
                heads += [(self.decoder[-1], d), (self.m1_encoder[-1], hp["m1_latent"])]
            for lin, start in heads:
                lin.weight.data[start:] = 0.0
                lin.bias.data[start:] = 0.0
        ms = hp["m1_min_std"]
        if ms is not None and (isinstance(ms, bool) or not isinstance(ms, (int, float)) or
                               not (math.isfinite(ms) and ms >= 0)):
            raise ValueError(f"M2: m1_min_std (keep M1 latent dimensions whose posterior means "
                             f"have a larger std; the authors' 0.1) must be None or a finite "
                             f"number >= 0, got {ms!r}")
        if ms is not None and hp["features"] != "m1":
            raise ValueError("M2: m1_min_std selects M1 latent dimensions; it needs "
                             "features='m1' (M1+M2)")
        self.m1_mask = None                  # device (m1_latent,) 0/1 once the dims are chosen
        self.m1_kept = None                  # the kept dimensions (host list)
        self.x_lab = self.y_lab = None
        self.labelled_indices = None
        self.n_unlabelled = None
        self._x_train = None

    def build_optimizers(self):
        lr = self.hp["lr"]
        self.opt = Adam(self.classifier.parameters() + self.encoder.parameters() +
                        self.decoder.parameters(), lr=lr)
        if self.hp["features"] == "m1":
            self.opt_m1 = Adam(self.m1_encoder.parameters() + self.m1_decoder.parameters(), lr=lr)

    def networks(self):
        nets = {"classifier": self.classifier, "encoder": self.encoder, "decoder": self.decoder}
        if self.hp["features"] == "m1":
            nets.update(m1_encoder=self.m1_encoder, m1_decoder=self.m1_decoder)
        return nets

    def optimizers(self):
        opts = {"m2": self.opt}
        if self.hp["features"] == "m1":
            opts["m1"] = self.opt_m1
        return opts

    # -- the labelled subset -------------------------------------------------------------
    def attach_data(self, x, y):
        """Choose the labelled subset of the training set (x, y) by ``label_seed`` and keep it on
        the device; the rest of the training set is seen without labels. Called by the Trainer."""
        if y is None:
            raise ValueError("M2: the training set needs labels to choose its labelled subset")
        idx = select_labelled(y, int(self.hp["n_labels"]), int(self.hp["label_seed"]))
        self._x_train = x                    # for the M1 dimension selection (m1_min_std)
        self.set_labelled(np.asarray(x)[idx], np.asarray(y)[idx], len(x), indices=idx)
        return idx

    def set_labelled(self, x_l, y_l, n_unlabelled, indices=None):
        """Hold ``(x_l, y_l)`` as the labelled set; ``n_unlabelled`` = N_u for the weights."""
        x_l = np.asarray(x_l)
        if tuple(x_l.shape[1:]) != self.data_shape or len(x_l) != len(y_l) or len(x_l) == 0:
            raise ValueError(f"M2: labelled examples must be (N_l, {self.data_shape}) with N_l "
                             f"labels, got {x_l.shape} and {np.shape(y_l)}")
        self.x_lab = self.to_model(x_l)
        self.y_lab = self._check_labels(np.asarray(y_l).astype(np.int64), len(x_l))
        self.n_unlabelled = int(n_unlabelled)
        self.labelled_indices = None if indices is None else [int(i) for i in indices]

    def extra_state(self):
        return {"labelled_indices": self.labelled_indices, "n_unlabelled": self.n_unlabelled,
                "m1_kept": self.m1_kept}

    def load_extra_state(self, state):
        idx = state.get("labelled_indices")
        if idx is not None and self.labelled_indices is not None and list(idx) != \
                list(self.labelled_indices):
            raise ValueError("M2.load_state_dict: the checkpoint was trained with another "
                             "labelled subset (label_seed or data differ)")
        kept = state.get("m1_kept")
        if kept is not None:
            self._set_m1_kept([int(j) for j in kept])

    # -- M1 latent dimensions kept for M2 (m1_min_std) ------------------------------------
    def _set_m1_kept(self, kept):
        mask = np.zeros(int(self.hp["m1_latent"]))
        mask[kept] = 1.0
        if self.m1_mask is None:
            self.m1_mask = self.to_model(mask)
        else:                                # in place: a captured CUDA graph holds the array
            self.m1_mask[...] = self.to_model(mask)
        self.m1_kept = list(kept)

    def m1_posterior_std(self, x, batch=1000):
        """Per-dimension std of M1's posterior means mu1 over the images ``x`` (host, float64)."""
        k = self.hp["m1_latent"]
        mus = [to_numpy(self._eval_forward(self.m1_encoder, self.to_model(
            x[i:i + batch]).reshape(len(x[i:i + batch]), -1))[:, :k]).astype(np.float64)
            for i in range(0, len(x), batch)]
        return np.concatenate(mus).std(axis=0)

    def select_m1_dims(self, x):
        """Keep the M1 dimensions with std(mu1) over ``x`` above ``m1_min_std``; returns them."""
        std = self.m1_posterior_std(x)
        thr = float(self.hp["m1_min_std"])
        kept = [int(j) for j in np.flatnonzero(std > thr)]
        if not kept:
            raise ValueError(f"M2: no M1 latent dimension has std(mu1) above m1_min_std={thr} "
                             f"(largest {std.max():.3g}); M1 encodes nothing yet")
        self._set_m1_kept(kept)
        return kept

    def apply_schedule(self):
        """At the first M2-phase step of M1+M2 with ``m1_min_std``: choose the M1 dimensions
        (host work, once; the StepRunner calls this before a graph launch)."""
        if (self.hp["m1_min_std"] is not None and self.m1_kept is None
                and not self.in_m1_phase()):
            if self._x_train is None:
                raise ValueError("M2: m1_min_std needs the training set to choose M1's "
                                 "dimensions: call attach_data(x_train, y_train) "
                                 "(scratchgan.train.Trainer does)")
            self.select_m1_dims(self._x_train)

    def host_logs(self):
        return {"m1_dims_kept": len(self.m1_kept)} if self.m1_kept is not None else {}

    def in_m1_phase(self):
        return self.hp["features"] == "m1" and self.step < int(self.hp["m1_steps"])

    def graph_key(self):
        return "m1" if self.in_m1_phase() else "m2"

    # -- features ----------------------------------------------------------------------
    def features(self, x, eps=None):
        """What M2 models: the flat pixels, or for M1+M2 z1 = mu1 + sigma1 eps (mu1 if eps is
        None) of the frozen M1 encoder (no cache)."""
        xf = x.reshape(x.shape[0], -1)
        if self.hp["features"] != "m1":
            return xf
        k = self.hp["m1_latent"]
        h = self._eval_forward(self.m1_encoder, xf)
        if eps is None:
            f = self.xp.ascontiguousarray(h[:, :k])
        else:
            f = h[:, :k] + self.xp.exp(0.5 * h[:, k:]) * eps
        return f if self.m1_mask is None else f * self.m1_mask

    # -- per-row terms with gradients --------------------------------------------------------
    def _recon_rows(self, out, f):
        """Per-row -log p(f|y, z) and a function giving d/d out for row weights w (N,)."""
        xp = self.xp
        if self.hp["features"] != "m1":
            rows = (softplus(out) - f * out).sum(axis=1)
            return rows, lambda w: (sigmoid(out) - f) * w[:, None]
        d = self.feat_dim
        mu, lv = out[:, :d], out[:, d:]
        r, iv = f - mu, xp.exp(-out[:, d:])
        terms = _LOG_2PI + lv + r * r * iv
        if self.m1_mask is None:
            rows = 0.5 * terms.sum(axis=1)
            return rows, lambda w: xp.concatenate([-(r * iv) * w[:, None],
                                                   0.5 * (1.0 - r * r * iv) * w[:, None]], axis=1)
        mk = self.m1_mask                    # only the kept dimensions are modelled
        rows = 0.5 * (terms * mk).sum(axis=1)
        return rows, lambda w: xp.concatenate([-(r * iv) * mk * w[:, None],
                                               0.5 * (1.0 - r * r * iv) * mk * w[:, None]],
                                              axis=1)

    def _bound_rows(self, f, y1h, eps):
        """Encoder and decoder forwards for rows (f, one-hot y): per-row l(x, y) and a backward
        ``back(w)`` that fills encoder/decoder .grad for the loss sum_rows w * l."""
        xp, k = self.xp, self.hp["latent_dim"]
        h = self.encoder(xp.concatenate([f, y1h], axis=1))
        mu, lv = h[:, :k], h[:, k:]
        std = xp.exp(0.5 * lv)
        z = mu + std * eps
        out = self.decoder(xp.concatenate([z, y1h], axis=1))
        rec, drec = self._recon_rows(out, f)
        var = std * std
        kl = 0.5 * (var + mu * mu - 1.0 - lv).sum(axis=1)
        rows = rec + kl + math.log(self.num_classes)

        def back(w):
            dz = self.decoder.backward(drec(w))[:, :k]
            wc = w[:, None]
            dmu = dz + mu * wc
            dlv = dz * eps * std * 0.5 + 0.5 * (var - 1.0) * wc
            self.encoder.backward(xp.concatenate([dmu, dlv], axis=1), input_grad=False)
        return rows, back

    def labelled_grads(self, f, y, eps, weight, alpha):
        """Fill .grad for ``weight * mean l(x, y) + alpha * mean -log q(y|x)`` over the labelled
        rows (f features, y int labels, eps (M, k))."""
        m = f.shape[0]
        y1h = self.one_hot(y)
        rows, back = self._bound_rows(f, y1h, eps)
        back(self.xp.full((m,), weight / m, dtype=self.dtype))
        logits = self.classifier(f)
        ce, c = L.softmax_cross_entropy_forward(logits, y)
        self.classifier.backward(L.softmax_cross_entropy_backward(alpha, c), input_grad=False)
        return {"labelled_bound": self.xp.asarray(-rows.mean()).reshape(()), "class_loss": ce}

    def unlabelled_grads(self, f, eps, weight):
        """Fill .grad for ``weight * mean -U(x)`` over unlabelled rows f; eps (K*M, k)."""
        xp, K = self.xp, self.num_classes
        m = f.shape[0]
        a = self.classifier(f)
        a = a - a.max(axis=1, keepdims=True)
        logpi = a - xp.log(xp.exp(a).sum(axis=1, keepdims=True))
        pi = xp.exp(logpi)                                     # q(y|x), (M, K)
        fr = xp.tile(f, (K, 1))                                # row c*M + i: example i, class c
        y1h = xp.repeat(xp.eye(K, dtype=self.dtype), m, axis=0)
        rows, back = self._bound_rows(fr, y1h, eps)
        l = rows.reshape(K, m).T                               # (M, K): l(x_i, c)
        neg_u = (pi * (l + logpi)).sum(axis=1)                 # -U(x) per example
        back((pi.T.reshape(-1)) * (weight / m))                # d(-U)/dl = pi
        g = l + logpi
        da = pi * (g - (pi * g).sum(axis=1, keepdims=True)) * (weight / m)
        self.classifier.backward(da, input_grad=False)
        return {"unlabelled_bound": xp.asarray(-neg_u.mean()).reshape(()),
                "entropy": xp.asarray(-(pi * logpi).sum(axis=1).mean()).reshape(())}

    def loss_weights(self):
        """(N_l/N, N_u/N, alpha): the weights of the three terms per step."""
        if self.x_lab is None:
            raise ValueError("M2 needs its labelled subset before training: call "
                             "attach_data(x_train, y_train) (scratchgan.train.Trainer does) or "
                             "set_labelled(x_l, y_l, n_unlabelled)")
        nl, nu = int(self.x_lab.shape[0]), int(self.n_unlabelled)
        return nl / (nl + nu), nu / (nl + nu), float(self.hp["alpha"])

    def m2_grads(self, x_l, y_l, x_u, eps_l, eps_u, feat_l=None, feat_u=None):
        """Fill the M2 networks' .grad with the gradient of the step's loss; returns logs.
        ``feat_*``: M1 noise for the features (M1+M2), else None."""
        wl, wu, alpha = self.loss_weights()
        fl = self.features(x_l, feat_l)
        fu = self.features(x_u, feat_u)
        logs = self.labelled_grads(fl, y_l, eps_l, wl, alpha)
        logs.update(self.unlabelled_grads(fu, eps_u, wu))
        logs["loss"] = -wl * logs["labelled_bound"] - wu * logs["unlabelled_bound"] + \
            alpha * logs["class_loss"]
        return logs

    def m1_grads(self, x, eps):
        """M1 (a VAE): fill its .grad with the gradient of the batch mean of -ELBO."""
        xp, k = self.xp, self.hp["m1_latent"]
        xf = x.reshape(x.shape[0], -1)
        h = self.m1_encoder(xf)
        mu, lv = xp.ascontiguousarray(h[:, :k]), xp.ascontiguousarray(h[:, k:])
        std = xp.exp(0.5 * lv)
        logits = self.m1_decoder(mu + std * eps)
        rec, c_rec = L.bernoulli_nll_forward(logits, xf)
        kl, c_kl = L.gaussian_kl_forward(mu, lv)
        dz = self.m1_decoder.backward(L.bernoulli_nll_backward(1.0, c_rec))
        dmu, dlv = L.gaussian_kl_backward(1.0, c_kl)
        self.m1_encoder.backward(xp.concatenate([dz + dmu, dz * eps * std * 0.5 + dlv], axis=1),
                                 input_grad=False)
        return {"m1_loss": rec + kl}

    def train_step(self, x, y=None):
        """M1 phase (M1+M2 only): a VAE step on the batch. M2 phase: draw a labelled minibatch
        from the held subset (self.random), noise for both passes, one Adam step on J^alpha."""
        x = self._check_x(x)
        m = x.shape[0]
        self.apply_schedule()
        if self.in_m1_phase():
            eps = self.draw_normal((m, self.hp["m1_latent"]))
            self.opt_m1.zero_grad()
            logs = self.m1_grads(x, eps)
            self.opt_m1.step()
            self.step += 1
            return logs
        self.loss_weights()
        ml, k, K = int(self.hp["labelled_batch"]), self.hp["latent_dim"], self.num_classes
        idx = self.random.integers(int(self.x_lab.shape[0]), (ml,))
        x_l, y_l = self.x_lab[idx], self.y_lab[idx]
        feat_l = feat_u = None
        if self.hp["features"] == "m1":
            feat_l = self.draw_normal((ml, self.hp["m1_latent"]))
            feat_u = self.draw_normal((m, self.hp["m1_latent"]))
        eps_l = self.draw_normal((ml, k))
        eps_u = self.draw_normal((K * m, k))
        self.opt.zero_grad()
        logs = self.m2_grads(x_l, y_l, x, eps_l, eps_u, feat_l, feat_u)
        self.opt.step()
        self.step += 1
        return logs

    # -- use ------------------------------------------------------------------------------
    def predict_logits(self, x):
        """Classifier logits of q(y|x) (eval, no cache), (N, K)."""
        return self._eval_forward(self.classifier, self.features(self.to_model(x)))

    def predict(self, x):
        return self.predict_logits(x).argmax(axis=1)

    def sample_noise(self, n, rng=None, labels=None):
        """z ~ N(0, I) and labels (default: class i * K // n, one row of a 10-column grid per
        class for n = 100)."""
        n = int(n)
        if labels is None:
            labels = (np.arange(n) * self.num_classes) // max(n, 1)
        labels = np.asarray(labels).astype(np.int64)
        return {"z": self.draw_normal((n, self.hp["latent_dim"]), 1.0, rng), "labels": labels}

    def decode(self, z, labels):
        """Bernoulli means of p(x|y, z) (through M1's decoder for M1+M2), (n, *data_shape)."""
        with no_grad():
            y1h = self.one_hot(labels)
            out = self._eval_forward(self.decoder, self.xp.concatenate([self.to_model(z), y1h], 1))
            if self.hp["features"] == "m1":
                z1 = out[:, :self.feat_dim]
                if self.m1_mask is not None:     # dropped dimensions at the prior's mean
                    z1 = z1 * self.m1_mask
                out = self._eval_forward(self.m1_decoder, z1)
            return sigmoid(out).reshape((-1,) + self.data_shape)

    def generate(self, noise):
        return self.decode(noise["z"], noise["labels"])

    def encode_style(self, x, labels=None):
        """The posterior mean of q(z|x, y), y the given labels or the classifier's prediction."""
        x = self.to_model(x)
        f = self.features(x)
        if labels is None:
            labels = self._eval_forward(self.classifier, f).argmax(axis=1)
        h = self._eval_forward(self.encoder, self.xp.concatenate([f, self.one_hot(labels)], 1))
        return h[:, :self.hp["latent_dim"]]

    def analogies(self, x):
        """The paper's analogies: the style z of each image in ``x`` (n rows) decoded with every
        class: (n, K, *data_shape)."""
        z = self.encode_style(x)
        n, K = z.shape[0], self.num_classes
        zz = self.xp.repeat(z, K, axis=0)
        labels = np.tile(np.arange(K), n)
        return self.decode(zz, labels).reshape((n, K) + self.data_shape)
