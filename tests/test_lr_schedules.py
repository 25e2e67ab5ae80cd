"""optim.linear_decay_second_half: pix2pix's and CycleGAN's schedule, and the models' use of it."""
import pytest

from scratchgan.models import get_model
from scratchgan.optim import linear_decay_second_half as sched


def test_constant_then_linear_to_zero():
    assert sched(2e-4, 0, None) == sched(2e-4, 10 ** 6, 0) == 2e-4
    assert sched(2e-4, 0, 100) == sched(2e-4, 50, 100) == 2e-4
    assert sched(2e-4, 75, 100) == pytest.approx(1e-4)
    assert sched(2e-4, 100, 100) == 0.0 and sched(2e-4, 150, 100) == 0.0


@pytest.mark.parametrize("name, shape, hyper", [
    ("pix2pix", (2, 8, 8), dict(ngf=2, ndf=2)),
    ("cyclegan", (6, 8, 8), dict(ngf=2, ndf=2, n_blocks=1)),
])
def test_models_follow_it(name, shape, hyper):
    m = get_model(name)(shape, rng=0, decay_steps=40, **hyper)
    for step in (0, 20, 30, 39):
        m.step = step
        m.apply_schedule()
        assert all(o.lr == pytest.approx(sched(2e-4, step, 40)) for o in m.optimizers().values())
    m.step = 40                       # the rate has reached 0: training on is refused by name
    with pytest.raises(ValueError, match="decay_steps"):
        m.apply_schedule()


def test_a_run_longer_than_decay_steps_is_refused_before_anything_is_written(tmp_path):
    import numpy as np
    from scratchgan.train import Trainer
    m = get_model("pix2pix")((2, 8, 8), rng=0, decay_steps=4, ngf=2, ndf=2)
    x = np.random.default_rng(0).uniform(-1, 1, (16, 2, 8, 8)).astype(np.float32)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="past decay_steps=4"):
        Trainer(m, x, batch_size=4, steps=5, out_dir=out, progress=False).fit()
    assert not out.exists()
