"""Trainer: outputs, bit-exact resume, NaN guard, side-effect-free sampling.

Uses a tiny stand-in model (defined here) implementing the GenerativeModel
interface, plus the real GAN on ring8 when scratchgan.models is available.
"""
import json
import math

import numpy as np
import pytest

import scratchgan
from scratchgan import rng as srng
from scratchgan.checkpoint import load_checkpoint, previous_path
from scratchgan.data import load_dataset
from scratchgan.models.base import GenerativeModel
from scratchgan.nn import Module, Parameter
from scratchgan.optim import Adam
from scratchgan.train import NonFiniteLossError, Trainer


class _Net(Module):
    def __init__(self, d, rng):
        super().__init__()
        self.mu = Parameter(rng.standard_normal(d))
        self.log_s = Parameter(np.zeros(d))
        self.register_buffer("running_mean", np.zeros(d))


class StandIn(GenerativeModel):
    """Fits a diagonal Gaussian to the data by stochastic maximum likelihood with Adam.

    Draws from both its own generator and scratchgan's global one, keeps an
    optimizer with state, a buffer that ``generate`` disturbs, and can be told to
    return a NaN loss at a given step. It builds itself (no ``GenerativeModel.__init__``:
    no flat buffers, no Philox stream) and takes the base class's defaults for the rest.
    """
    name = "standin"
    data_range = (0.0, 1.0)
    default_dataset = "ring8"
    defaults = {"batch_size": 32, "epochs": 2, "lr": 0.05, "nan_at": None}
    conditional = False

    def __init__(self, data_shape, *, num_classes=10, device="cpu", dtype=np.float64, rng=None,
                 lr=0.05, nan_at=None):
        self.data_shape, self.num_classes = tuple(data_shape), int(num_classes)
        self.device, self.dtype = device, np.dtype(dtype)
        self.rng = np.random.default_rng(int(srng.get_rng().integers(2**62))) if rng is None else rng
        d = int(np.prod(self.data_shape))
        self.net = _Net(d, self.rng)
        self.opt = Adam(self.net.parameters(), lr=lr)
        self.step, self.nan_at = 0, nan_at

    def networks(self):
        return {"net": self.net}

    def optimizers(self):
        return {"net": self.opt}

    def sample_noise(self, n, rng=None, labels=None):
        return {"z": (self.rng if rng is None else rng).standard_normal((n, *self.data_shape))}

    def generate(self, noise):
        self.net.register_buffer("running_mean", self.net.running_mean + 1.0)  # a side effect the trainer must undo
        self.rng.random()                                     # and a draw
        s = np.exp(self.net.log_s.data).reshape(self.data_shape)
        return self.net.mu.data.reshape(self.data_shape) + s * noise["z"]

    def train_step(self, x, y=None):
        x = x.reshape(len(x), -1)
        mu, ls = self.net.mu, self.net.log_s
        jitter = 1e-3 * self.rng.standard_normal(mu.data.shape) + \
            1e-3 * srng.get_rng().standard_normal(mu.data.shape)
        r = (x - mu.data - jitter) * np.exp(-ls.data)
        nll = float(np.mean(0.5 * (r ** 2).sum(1) + ls.data.sum()))
        self.opt.zero_grad()
        mu.grad += -(r * np.exp(-ls.data)).mean(0)
        ls.grad += (1 - r ** 2).mean(0)
        self.opt.step()
        self.net.register_buffer("running_mean", 0.9 * self.net.running_mean + 0.1 * x.mean(0))
        self.step += 1
        if self.nan_at is not None and self.step >= self.nan_at:
            nll = float("nan")
        return {"nll": nll, "scale": float(np.exp(ls.data).mean())}

    def state_dict(self):
        return {"networks": {"net": self.net.state_dict()},
                "optimizers": {"net": self.opt.state_dict()}, "step": self.step,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, sd):
        self.net.load_state_dict(sd["networks"]["net"])
        self.opt.load_state_dict(sd["optimizers"]["net"])
        self.step = sd["step"]
        self.rng.bit_generator.state = sd["rng"]


def make(seed=0, **kw):
    scratchgan.manual_seed(seed)
    return StandIn((2,), **kw)


@pytest.fixture(scope="module")
def ring():
    return load_dataset("ring8", limit=640)


def params(model):
    return {k: v.copy() for net in model.networks().values() for k, v in net.state_dict().items()}


def test_outputs_and_learning(tmp_path, ring):
    x, y = ring
    m = make()
    t = Trainer(m, x, y, batch_size=32, epochs=2, out_dir=tmp_path, seed=1, progress=False,
                log_every=5, sample_every=15, config={"model": "standin"})
    out = t.fit()
    assert out["step"] == 40 == t.step
    for f in ["samples.png", "loss_curves.png", "metrics.jsonl", "config.json", "last.ckpt.npz",
              "samples/epoch_001.png", "samples/epoch_002.png", "samples/step_0000015.png",
              "samples/step_0000030.png"]:
        assert (tmp_path / f).is_file(), f
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(5, 41, 5))
    assert all(math.isfinite(r["nll"]) for r in rows) and rows[-1]["epoch"] == 2.0
    # the fitted Gaussian moved towards the data's mean and spread
    assert np.exp(m.net.log_s.data).mean() > 1.0
    ck = load_checkpoint(tmp_path / "last.ckpt.npz")
    assert ck["trainer"]["step"] == 40 and ck["config"] == {"model": "standin"}
    assert previous_path(tmp_path / "last.ckpt.npz").is_file()  # epoch-1 checkpoint kept


@pytest.mark.parametrize("split", [7, 20, 25])
def test_resume_is_bit_exact(tmp_path, ring, split):
    """2N steps in one go == N steps, save, fresh process-like restart, resume to 2N."""
    x, y = ring
    total = 2 * split
    m_full = make(seed=3)
    Trainer(m_full, x, y, batch_size=32, steps=total, out_dir=tmp_path / "full", seed=5,
            progress=False, sample_every=10).fit()
    m_a = make(seed=3)
    Trainer(m_a, x, y, batch_size=32, steps=split, out_dir=tmp_path / "part", seed=5,
            progress=False, sample_every=10).fit()
    srng.manual_seed(12345)  # a different global stream: the checkpoint must restore it
    m_b = make(seed=3)
    m_b.rng.random(17)        # and a disturbed model generator
    t = Trainer(m_b, x, y, batch_size=32, steps=total, out_dir=tmp_path / "part", seed=5,
                progress=False, sample_every=10, resume=True)
    assert t.fit()["step"] == total
    pa, pb = params(m_full), params(m_b)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)
    assert m_full.opt.state_dict()["t"] == m_b.opt.state_dict()["t"] if "t" in \
        m_full.opt.state_dict() else True
    rows = [json.loads(l)["step"] for l in (tmp_path / "part/metrics.jsonl").read_text().splitlines()]
    assert rows == sorted(set(rows)) and rows[-1] == total


def test_sampling_has_no_side_effects(tmp_path, ring):
    x, y = ring
    m1 = make(seed=1)
    Trainer(m1, x, y, batch_size=32, steps=12, out_dir=tmp_path / "a", seed=0,
            progress=False).fit()
    m2 = make(seed=1)  # built after m1's run: both start from the same global stream
    Trainer(m2, x, y, batch_size=32, steps=12, out_dir=tmp_path / "b", seed=0, progress=False,
            sample_every=3).fit()
    for k, v in params(m1).items():
        np.testing.assert_array_equal(v, params(m2)[k], err_msg=k)


def test_nan_guard_keeps_last_good_checkpoint(tmp_path, ring):
    x, y = ring
    m = make(nan_at=13)
    t = Trainer(m, x, y, batch_size=32, steps=50, out_dir=tmp_path, seed=0, progress=False,
                checkpoint_every=5)
    with pytest.raises(NonFiniteLossError, match=r"step 13: nll = nan.*step 10\) is kept") as e:
        t.fit()
    assert e.value.step == 13 and e.value.name == "nll"
    ck = load_checkpoint(tmp_path / "last.ckpt.npz")
    assert ck["trainer"]["step"] == 10
    assert load_checkpoint(previous_path(tmp_path / "last.ckpt.npz"))["trainer"]["step"] == 5
    raw = (tmp_path / "metrics.jsonl").read_text().splitlines()[-1]
    last = json.loads(raw, parse_constant=lambda c: pytest.fail(f"not JSON: {c} in {raw}"))
    assert last["step"] == 13 and last["nll"] is None and last["nonfinite"] == {"nll": "nan"}
    from scratchgan.viz import read_metrics
    rec = read_metrics(tmp_path / "metrics.jsonl")[-1]
    assert math.isnan(rec["nll"]) and "nonfinite" not in rec
    # resuming from the kept checkpoint works (and hits the same NaN again at step 13)
    m2 = make(nan_at=13)
    with pytest.raises(NonFiniteLossError, match="step 13"):
        Trainer(m2, x, y, batch_size=32, steps=50, out_dir=tmp_path, seed=0, progress=False,
                resume=True).fit()


def test_trainer_argument_errors(tmp_path, ring):
    x, y = ring
    m = make()
    with pytest.raises(ValueError, match="either epochs or steps"):
        Trainer(m, x, y, epochs=1, steps=3, out_dir=tmp_path)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        Trainer(m, x, y, steps=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(m, x, y, batch_size=-1, steps=2, out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(m, x, y, steps=2, out_dir=tmp_path / "empty", resume=True, progress=False).fit()


def test_image_and_histogram_outputs(tmp_path):
    rng = np.random.default_rng(0)
    ximg = rng.random((64, 1, 8, 8))
    m = make()
    m = StandIn((1, 8, 8))
    Trainer(m, ximg, None, batch_size=16, steps=4, out_dir=tmp_path / "img", progress=False,
            n_samples=20).fit()
    import matplotlib.image as mpimg
    assert mpimg.imread(tmp_path / "img/samples.png").ndim >= 2
    x1, _ = load_dataset("gaussian1d", limit=256)
    Trainer(StandIn((1,)), x1, None, batch_size=16, steps=4, out_dir=tmp_path / "h",
            progress=False).fit()
    assert (tmp_path / "h/samples.png").stat().st_size > 1000


# ----------------------------------------------------------------------- real models
def test_resume_bit_exact_real_gan_on_ring8(tmp_path, ring):
    from scratchgan.models import GAN
    x, y = ring

    def build():
        scratchgan.manual_seed(0)
        return GAN(x.shape[1:], num_classes=8)

    full = build()
    Trainer(full, x, y, batch_size=64, steps=16, out_dir=tmp_path / "full", seed=2,
            progress=False, sample_every=5).fit()
    a = build()
    Trainer(a, x, y, batch_size=64, steps=8, out_dir=tmp_path / "part", seed=2, progress=False,
            sample_every=5).fit()
    srng.manual_seed(99)
    b = build()
    Trainer(b, x, y, batch_size=64, steps=16, out_dir=tmp_path / "part", seed=2, progress=False,
            sample_every=5, resume=True).fit()
    pa, pb = params(full), params(b)
    assert pa.keys() == pb.keys() and len(pa) > 0
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


# ------------------------------------------------------------- Ctrl-C, metrics, temporaries
class Interrupting(StandIn):
    """Sends itself SIGINT (``times`` times) during step ``at``."""

    def __init__(self, *a, at=5, times=1, **kw):
        super().__init__(*a, **kw)
        self.at, self.times = at, times

    def train_step(self, x, y=None):
        import os
        import signal
        if self.step + 1 == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(1000):     # let the handler run inside this step
                    pass
        return super().train_step(x, y)


def test_ctrl_c_finishes_the_step_and_writes_a_checkpoint(tmp_path, ring):
    import signal
    from scratchgan.train import TrainingInterrupted
    x, y = ring
    before = signal.getsignal(signal.SIGINT)
    scratchgan.manual_seed(0)
    m = Interrupting((2,), at=5)
    t = Trainer(m, x, y, batch_size=32, steps=1000, out_dir=tmp_path, progress=False)
    with pytest.raises(TrainingInterrupted, match=r"step 5 of 1000.*last.ckpt.npz") as e:
        t.fit()
    assert e.value.step == 5 and m.step == 5
    assert load_checkpoint(tmp_path / "last.ckpt.npz")["trainer"]["step"] == 5
    assert signal.getsignal(signal.SIGINT) is before          # our handler is gone again
    # the checkpoint resumes like any other
    m2 = make()
    assert Trainer(m2, x, y, batch_size=32, steps=8, out_dir=tmp_path, progress=False,
                   resume=True).fit()["start_step"] == 5


def test_a_second_ctrl_c_aborts_at_once(tmp_path, ring):
    import signal
    from scratchgan.train import TrainingInterrupted
    x, y = ring
    before = signal.getsignal(signal.SIGINT)
    scratchgan.manual_seed(0)
    m = Interrupting((2,), at=5, times=2)
    t = Trainer(m, x, y, batch_size=32, steps=1000, out_dir=tmp_path, progress=False)
    with pytest.raises(KeyboardInterrupt) as e:
        t.fit()
    assert not isinstance(e.value, TrainingInterrupted)
    assert m.step == 4 and not (tmp_path / "last.ckpt.npz").exists()
    assert signal.getsignal(signal.SIGINT) is before


def test_metrics_are_strict_json(tmp_path):
    from scratchgan.train import metrics_line
    from scratchgan.viz import read_metrics
    rec = {"step": 3, "loss_d": float("inf"), "loss_g": float("-inf"), "nll": float("nan"),
           "scale": 1.5, "note": "x"}
    line = metrics_line(rec)
    assert "NaN" not in line and "Infinity" not in line
    back = json.loads(line)
    assert back["loss_d"] is None and back["nonfinite"] == {"loss_d": "inf", "loss_g": "-inf",
                                                            "nll": "nan"}
    p = tmp_path / "metrics.jsonl"
    p.write_text(line + "\n" + '{"step": 4, "nll": NaN}\n'
                 + json.dumps({"step": 5, "nll": None, "nonfinite": ["nll"]}) + "\n")
    rows = read_metrics(p)
    assert rows[0]["loss_d"] == math.inf and rows[0]["loss_g"] == -math.inf
    assert math.isnan(rows[0]["nll"]) and rows[0]["scale"] == 1.5 and "nonfinite" not in rows[0]
    assert math.isnan(rows[1]["nll"]) and math.isnan(rows[2]["nll"])


def test_fit_removes_stale_temporaries_and_records_resumes(tmp_path, ring):
    x, y = ring
    Trainer(make(), x, y, batch_size=32, steps=4, out_dir=tmp_path, progress=False).fit()
    stale = tmp_path / "last.ckpt.npz.k1ll3d_x.tmp"
    stale.write_bytes(b"PK half")
    out = Trainer(make(), x, y, batch_size=32, steps=6, out_dir=tmp_path, progress=False,
                  resume=True, resume_changes={"steps": [4, 6]}).fit()
    assert not stale.exists()
    assert out["resumed_from"] == {"step": 4, "file": str(tmp_path / "last.ckpt.npz"),
                                   "reason": None}
    rows = [json.loads(l) for l in (tmp_path / "resumes.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["from_step"] == 4 and rows[0]["changed"] == {"steps": [4, 6]}
    assert rows[0]["file"].endswith("last.ckpt.npz") and "time" in rows[0]


def test_resume_from_the_previous_checkpoint_warns_why(tmp_path, ring):
    x, y = ring
    Trainer(make(), x, y, batch_size=32, steps=6, out_dir=tmp_path, progress=False,
            checkpoint_every=3).fit()
    p = tmp_path / "last.ckpt.npz"
    p.write_bytes(p.read_bytes()[:64])
    with pytest.warns(UserWarning, match=r"truncated or corrupted.*previous checkpoint"):
        out = Trainer(make(), x, y, batch_size=32, steps=8, out_dir=tmp_path, progress=False,
                      resume=True).fit()
    assert out["start_step"] == 3 and out["resumed_from"]["file"] == str(previous_path(p))
    assert "truncated" in json.loads((tmp_path / "resumes.jsonl").read_text())["fallback_reason"]


def test_resume_into_other_data_is_a_clear_error(tmp_path, ring):
    x, y = ring
    Trainer(make(), x, y, batch_size=32, steps=4, out_dir=tmp_path, progress=False).fit()
    with pytest.raises(ValueError, match=r"resume: the checkpoint .* does not match this run"):
        Trainer(make(), x[:320], y[:320], batch_size=32, steps=8, out_dir=tmp_path,
                progress=False, resume=True).fit()


# ------------------------------------------------------- the trainer's calls into the model
class Hooked(StandIn):
    """Overrides every GenerativeModel method the trainer calls, and records the calls."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls = []

    def batches_per_step(self):
        return 2

    def uses_labels(self):
        return True

    def init_from_data(self, x):
        self.calls.append(("init_from_data", len(x)))

    def attach_data(self, x, y):
        self.calls.append(("attach_data", len(x), len(y)))

    def check_run_length(self, total_steps):
        self.calls.append(("check_run_length", total_steps))

    def host_logs(self):
        return {"lr": 0.25}

    def train_step(self, x, y=None):
        self.calls.append(("train_step", [len(a) for a in x], [len(b) for b in y]))
        return super().train_step(np.concatenate(x))


def test_the_trainer_calls_the_models_overrides(tmp_path, ring):
    x, y = ring[0][:64], ring[1][:64]
    scratchgan.manual_seed(0)
    m = Hooked((2,))
    tr = Trainer(m, x, y, batch_size=8, epochs=1, out_dir=tmp_path / "r", progress=False,
                 log_every=1)
    assert tr.steps == 4                       # 8 batches per epoch, 2 per step
    assert m.calls == [("init_from_data", 64), ("attach_data", 64, 64)]
    tr.fit()
    assert m.calls[2] == ("check_run_length", 4)
    assert m.calls[3:] == [("train_step", [8, 8], [8, 8])] * 4
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text()
            .splitlines()]
    assert [r["lr"] for r in rows] == [0.25] * 4


def test_the_trainer_checks_labels_of_a_model_that_uses_them(tmp_path, ring):
    x, y = ring
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        Trainer(Hooked((2,), num_classes=3), x, y, steps=1, out_dir=tmp_path, progress=False)
    Trainer(make(), x, y, steps=1, out_dir=tmp_path, progress=False)   # labels unused: no check


def test_a_run_the_model_refuses_writes_nothing(tmp_path, ring):
    class Short(StandIn):
        def check_run_length(self, total_steps):
            raise ValueError(f"Short: at most 3 steps, asked for {total_steps}")

    tr = Trainer(Short((2,)), ring[0], steps=5, out_dir=tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match="at most 3 steps, asked for 5"):
        tr.fit()
    assert not (tmp_path / "r").exists()


def test_the_trainer_takes_generative_models_only(tmp_path, ring):
    class Duck:
        def train_step(self, x, y=None):
            return {}

    with pytest.raises(TypeError, match="must be a scratchgan.models.GenerativeModel.*Duck"):
        Trainer(Duck(), ring[0], steps=1, out_dir=tmp_path, progress=False)
