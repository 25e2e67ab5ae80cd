"""The gradient checker itself: it must pass correct gradients, catch wrong ones,
and say where."""
import numpy as np
import pytest

from scratchgan.gradcheck import GradcheckError, assert_close, gradcheck


def _square_forward(x):
    return x * x, x


def _square_backward(dy, x):
    return (2 * x * dy,)


def test_correct_gradient_passes(rng):
    x = rng.standard_normal((3, 4))
    res = gradcheck(_square_forward, _square_backward, [x])
    assert res[0].passed and res[0].max_rel_err < 1e-7


def test_wrong_gradient_fails_and_names_worst_index(rng):
    x = rng.standard_normal((3, 4))

    def bad_backward(dy, cache):
        g = 2 * cache * dy
        g[1, 2] += 0.5  # one wrong element
        return (g,)

    with pytest.raises(GradcheckError, match=r"worst at index \(1, 2\)"):
        gradcheck(_square_forward, bad_backward, [x])


def test_random_projection_mode_catches_a_scaled_gradient(rng):
    x = rng.standard_normal((20, 30))
    gradcheck(_square_forward, _square_backward, [x], n_projections=4)
    with pytest.raises(GradcheckError, match="random projections"):
        gradcheck(_square_forward, lambda dy, c: (2.01 * c * dy,), [x], n_projections=4)


def test_float32_inputs_are_refused(rng):
    x = rng.standard_normal((2, 2)).astype(np.float32)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(_square_forward, _square_backward, [x])


def test_shape_mismatch_is_reported(rng):
    x = rng.standard_normal((2, 3))
    with pytest.raises(GradcheckError, match="gradient shape"):
        gradcheck(_square_forward, lambda dy, c: (np.zeros((3, 2)),), [x])


def test_assert_close_reports_worst_index():
    a = np.zeros((2, 3), dtype=np.float32)
    b = a.copy()
    b[1, 1] = 1.0
    with pytest.raises(AssertionError, match=r"\(1, 1\)"):
        assert_close(a, b)
    assert_close(a, a.astype(np.float64))
