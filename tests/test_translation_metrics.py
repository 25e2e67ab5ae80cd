"""Image-to-image scores (scratchgan.metrics.translation) on cases whose answer is known, their
evaluators on stand-in models, pix2pix and CycleGAN trained through the Trainer and scored by
the registry, and the Fashion classifier's recipe."""
import numpy as np
import pytest

import scratchgan.metrics  # noqa: F401  (registers the evaluators)
from scratchgan.data.image2image import dilate, grey_rgb, restyle
from scratchgan.metrics import translation as T
from scratchgan.metrics.evaluators import EvalContext, get_evaluator


class StubClassifier:
    """Predicts the class from the mean intensity (0.1 steps): a classifier whose accuracy on
    any input can be worked out by hand; its features are the pixel means of 4 quadrants."""

    @staticmethod
    def predict(x, *a, **k):
        x = np.asarray(x, np.float64)
        return np.clip((x.reshape(len(x), -1).mean(axis=1) * 10).astype(int), 0, 9)

    def accuracy(self, x, labels, *a, **k):
        return float((self.predict(x) == np.asarray(labels)).mean())

    def features_and_log_probs(self, x, *a, **k):
        x = np.asarray(x, np.float64)[:, 0]
        h = x.shape[1] // 2
        f = np.stack([x[:, :h, :h].mean((1, 2)), x[:, :h, h:].mean((1, 2)),
                      x[:, h:, :h].mean((1, 2)), x[:, h:, h:].mean((1, 2))], axis=1)
        return f, np.log(np.full((len(x), 10), 0.1))


def level_images(labels, size=28, rng=None):
    """Images whose mean intensity is (label + 0.5) / 10, so StubClassifier reads the label."""
    x = np.empty((len(labels), 1, size, size), np.float32)
    for i, y in enumerate(labels):
        x[i] = (y + 0.5) / 10
    return x


# ----------------------------------------------------------------------------- functions
def test_ssim_known_cases():
    r = np.random.default_rng(0)
    x = r.uniform(0, 1, (3, 2, 20, 20))
    np.testing.assert_allclose(T.ssim(x, x), 1.0, rtol=0, atol=1e-12)
    a, b = np.full((1, 1, 16, 16), 0.3), np.full((1, 1, 16, 16), 0.7)
    c1 = 0.01 ** 2
    want = (2 * 0.3 * 0.7 + c1) / (0.3 ** 2 + 0.7 ** 2 + c1)       # no variance: luminance only
    assert T.ssim(a, b)[0] == pytest.approx(want, rel=1e-12)
    assert T.ssim(x, r.uniform(0, 1, x.shape)).max() < 0.2
    with pytest.raises(ValueError, match="one shape"):
        T.ssim(x, x[:, :1])


def test_destyle_inverts_the_restyling_up_to_the_dilation():
    img = np.random.default_rng(1).uniform(0, 1, (4, 1, 28, 28))
    np.testing.assert_allclose(T.destyle(restyle(img)), dilate(img[:, 0])[:, None], atol=1e-12)
    np.testing.assert_allclose(T.grey(grey_rgb(img)), img, atol=1e-12)
    assert T.to_unit(np.array([-1.0, 0.0, 1.0, 3.0]), (-1.0, 1.0)).tolist() == [0.0, 0.5, 1.0, 1.0]


def test_paired_scores_known_cases():
    y = np.array([0, 3, 7, 9])
    b = level_images(y)
    same = T.paired_scores(b, b, y, StubClassifier(), hidden=np.ones((28, 28), bool))
    assert same["l1"] == 0 and same["ssim"] == pytest.approx(1.0) and same["l1_hidden_pixels"] == 0
    assert same["label_acc_translated"] == same["label_acc_real_targets"] == 1.0
    assert same["label_gap_points"] == 0
    dark = T.paired_scores(np.zeros_like(b), b, y, StubClassifier())
    assert dark["label_acc_translated"] == 0.25                   # class 0 only
    assert dark["label_gap_points"] == pytest.approx(75.0)
    assert dark["l1"] == pytest.approx(float(b.mean()))
    with pytest.raises(ValueError, match="differ"):
        T.paired_scores(b[:2], b, y, StubClassifier())


# ----------------------------------------------------------------------------- evaluators
class Pix2PixStandIn:
    """Translates A to a fixed answer, in order: the targets (an oracle) or anything given."""
    data_range = (-1.0, 1.0)

    def __init__(self, answers):
        self.answers, self.at = answers, 0

    def split(self, x):
        return x[:, :1], x[:, 1:]

    def translate(self, a):
        out = self.answers[self.at:self.at + len(a)]
        self.at += len(a)
        return out


def _ctx(model, **data):
    return EvalContext(model=model, data=data, seed=0,
                       extras={"mnist_classifier": StubClassifier(),
                               "fashion_classifier": StubClassifier()})


def test_paired_translation_evaluator_oracle_and_failure():
    y = np.arange(10).repeat(60)                                   # 600 > one chunk of 500
    b = level_images(y) * 2 - 1                                    # in [-1, 1]
    x = np.concatenate([np.zeros_like(b), b], axis=1)
    ev = get_evaluator("paired-translation")
    got = ev(_ctx(Pix2PixStandIn(b), x_test=x, y_test=y, name="quadrants-paired2"), n_test=600)
    assert got["l1"] == 0 and got["l1_hidden_pixels"] == 0 and got["label_gap_points"] == 0
    assert got["n_test"] == 600
    grey = ev(_ctx(Pix2PixStandIn(np.zeros_like(b)), x_test=x, y_test=y, name="edges2fashion"),
              n_test=600)
    assert "l1_hidden_pixels" not in grey
    assert grey["label_acc_translated"] == pytest.approx(0.1)      # everything reads as 5
    assert grey["label_gap_points"] == pytest.approx(90.0)
    with pytest.raises(ValueError, match="classifier must be"):
        ev(_ctx(Pix2PixStandIn(b), x_test=x, y_test=y, name="edges2fashion"), classifier="cifar")
    with pytest.raises(ValueError, match="labelled test set"):
        ev(_ctx(Pix2PixStandIn(b), x_test=x, name="edges2fashion"))
    with pytest.raises(ValueError, match="neither translates"):
        ev(_ctx(object(), x_test=x, y_test=y))


def test_paired_translation_scores_cvae_completions_on_the_hidden_pixels():
    from scratchgan.data.quadrants import revealed_mask

    class CompletesWithZeros:
        data_range = (0.0, 1.0)
        hp = {"n_revealed": 1}

        def to_model(self, v):
            return v

        def complete(self, batch, n=1, rng=None):
            m = revealed_mask(1)
            return (np.asarray(batch) * m)[None]

    y = np.arange(10).repeat(3)
    x = level_images(y)
    got = get_evaluator("paired-translation")(_ctx(CompletesWithZeros(), x_test=x, y_test=y,
                                                   name="mnist"), n_test=30)
    hidden = ~revealed_mask(1)
    assert got["l1_hidden_pixels"] == pytest.approx(float(x[:, :, hidden].mean()))
    assert got["l1"] == pytest.approx(float(x.mean()) * hidden.mean())


class CycleStandIn:
    """Translates each way by the known construction of the domains (grey <-> restyled)."""
    data_range = (-1.0, 1.0)

    def __init__(self, identity=False):
        self.identity = identity

    def translate(self, x, direction="AB"):
        if self.identity:
            return x
        u = T.to_unit(x, self.data_range).astype(np.float64)
        out = restyle(T.grey(u)) if direction == "AB" else grey_rgb(T.destyle(u))
        return out * 2 - 1


@pytest.fixture
def domains(monkeypatch):
    """The test domains of mnist2restyled built the way the data module builds them, from
    digit-like bars (no data files): A grey RGB, B restyled, from disjoint halves."""
    from scratchgan.data import image2image

    def load_domains(split="train", data_range=(0.0, 1.0), data_dir=None, download=True):
        y = np.arange(10).repeat(8)
        img = np.zeros((len(y), 1, 28, 28))
        for i, c in enumerate(y):
            img[i, 0, 2 * c + 4:2 * c + 6, 4 + c:24] = 1.0
        h = len(img) // 2
        lo, hi = data_range
        sc = lambda v: (lo + (hi - lo) * v).astype(np.float32)  # noqa: E731
        return sc(grey_rgb(img[:h])), y[:h], sc(restyle(img[h:])), y[h:]

    monkeypatch.setattr(image2image.MNIST2RESTYLED, "load_domains", load_domains)


def test_cycle_translation_evaluator_on_known_domains(domains):
    ev = get_evaluator("cycle-translation")
    extras = {"mnist_classifier": StubClassifier()}
    ident = ev(EvalContext(model=CycleStandIn(identity=True), data={}, seed=0, extras=extras),
               n_test=64)
    assert ident["cycle_l1_A"] == 0 and ident["cycle_l1_B"] == 0   # translating nothing
    assert ident["n_test_per_domain"] == 32
    known = ev(EvalContext(model=CycleStandIn(), data={}, seed=0, extras=extras), n_test=64)
    # A->B by the construction itself: the translations are the restyled domain's images
    assert known["fd_lenet_A_to_B"] < ident["fd_lenet_A_to_B"]
    assert known["cycle_l1_A"] > 0                                 # the dilation is not undone
    with pytest.raises(ValueError, match="two-way translate"):
        ev(EvalContext(model=Pix2PixStandIn(None), data={}), n_test=64)
    with pytest.raises(ValueError, match="n_test"):
        ev(EvalContext(model=CycleStandIn(), data={}, extras=extras), n_test=2)


def test_fashion_classifier_is_shipped_and_reads_the_weights():
    clf = T.load_fashion_classifier()
    x = np.random.default_rng(0).uniform(0, 1, (5, 1, 28, 28)).astype(np.float32)
    assert clf.predict(x).shape == (5,)
    with pytest.raises(FileNotFoundError, match="train_lenet"):
        T.load_fashion_classifier("/nonexistent/lenet.npz")


def test_train_lenet_learns_a_separable_task():
    y = np.arange(10).repeat(20)
    x = np.zeros((200, 1, 28, 28), np.float32)
    for i, c in enumerate(y):                  # class c: a bright bar in row block c
        x[i, 0, 2 * c + 4:2 * c + 6, 4:24] = 1.0
    clf, acc = T.train_lenet(x, y, x, y, epochs=3, batch=20, lr=3e-3)
    assert acc > 0.9
    with pytest.raises(ValueError, match="epochs"):
        T.train_lenet(x, y, x, y, epochs=0)


# ----------------------------------------------------------------------------- trained models
def test_pix2pix_and_cyclegan_train_through_the_trainer_and_are_scored(tmp_path, domains):
    import math

    from scratchgan.models import get_model
    from scratchgan.train import Trainer
    r = np.random.default_rng(0)
    y = np.arange(10).repeat(4)
    b = level_images(y) * 2 - 1
    x = np.concatenate([np.clip(b + r.normal(0, 0.1, b.shape), -1, 1).astype(np.float32), b], 1)
    p2p = get_model("pix2pix")(x.shape[1:], rng=0, ngf=8, ndf=8, objective="l1+cgan")
    Trainer(p2p, x, y, batch_size=8, steps=3, out_dir=tmp_path / "p2p", progress=False,
            epoch_outputs=False).fit()
    rec = get_evaluator("paired-translation")(_ctx(p2p, x_test=x, y_test=y, name="edges2fashion"),
                                              n_test=40)
    assert all(math.isfinite(v) for v in rec.values()) and 0 <= rec["label_acc_translated"] <= 1
    decay = 4
    cyc = get_model("cyclegan")((6, 28, 28), rng=0, ngf=8, ndf=8, n_blocks=1, decay_steps=decay)
    xa = r.uniform(-1, 1, (16, 6, 28, 28)).astype(np.float32)
    Trainer(cyc, xa, batch_size=4, steps=decay, out_dir=tmp_path / "cyc", progress=False,
            epoch_outputs=False).fit()
    assert cyc.lr_at(decay) == 0.0                    # the model's own decay reached 0
    ctx = EvalContext(model=cyc, data={}, seed=0, extras={"mnist_classifier": StubClassifier()})
    rec = get_evaluator("cycle-translation")(ctx, n_test=16)
    assert all(math.isfinite(v) for v in rec.values()) and rec["cycle_l1_A"] > 0
