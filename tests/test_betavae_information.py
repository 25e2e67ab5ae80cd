"""scratchgan.metrics.information: the ideal-decoder budget of shape and orientation."""
import json
import math

import numpy as np
import pytest

from scratchgan.data import dsprites as D
from scratchgan.metrics import information as info


def test_binary_entropy_known_values():
    h = info.binary_entropy([0.0, 1.0, 0.5, 0.25])
    np.testing.assert_allclose(h, [0.0, 0.0, math.log(2), -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))],
                               rtol=0, atol=1e-15)


def test_entropy_is_the_mean_nll_under_the_pixel_means():
    """The identity the budget rests on: images scored by a factorised Bernoulli at their own
    pixel means have mean NLL = summed binary entropy of those means (computed here directly
    from the NLL, not through the entropy)."""
    cls = np.array([[s, 3, o, 16, 16] for s in range(3) for o in range(40)])
    x = D.render_classes(cls).reshape(120, -1).astype(np.float64)
    p = x.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        nll = -(np.where(x > 0, np.log(np.where(p > 0, p, 1.0)), 0.0)
                + np.where(x < 1, np.log(np.where(p < 1, 1 - p, 1.0)), 0.0)).sum(axis=1)
    assert nll.mean() == pytest.approx(info.binary_entropy(p).sum(), rel=1e-12)


def test_budget_orders_and_picture_count():
    h0, h1, ht, area, hpic, distinct = info.budget(2, 15, 15)
    assert h0 > h1 > 0 and h0 > ht > 0 and area > 0
    # the symmetries: a square repeats every quarter turn (10 distinct of 40), an ellipse
    # every half turn (20), a heart never (40); uniform shape and orientation then give
    # H = (1/3)(log 30 + log 60 + log 120)
    assert distinct == 70
    assert hpic == pytest.approx((math.log(30) + math.log(60) + math.log(120)) / 3, rel=1e-12)


def test_main_refuses_a_non_json_out(tmp_path):
    with pytest.raises(SystemExit):
        info.main(["--out", str(tmp_path / "x.txt")])
    assert not list(tmp_path.iterdir())


def test_main_writes_the_budget(tmp_path, capsys):
    out = tmp_path / "budget.json"
    res = info.main(["--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    assert len(res["per_scale"]) == D.FACTOR_SIZES[1]
    assert "wrote" in capsys.readouterr().out
