"""scratchgan.nn.mlp: the layer order, the activation, the final module, the rng order."""
import numpy as np
import pytest

from scratchgan import nn


def test_layers_and_activation():
    net = nn.mlp([5, 4, 3, 2], np.random.default_rng(0), activation=nn.Softplus, final=nn.Tanh())
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "Softplus", "Linear", "Softplus", "Linear", "Tanh"]
    widths = [(m.in_features, m.out_features) for m in net if isinstance(m, nn.Linear)]
    assert widths == [(5, 4), (4, 3), (3, 2)]


def test_weights_drawn_in_layer_order():
    a = nn.mlp([6, 5, 4], np.random.default_rng(3))
    first = nn.Linear(6, 5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a[0].weight.data, first.weight.data)


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="at least 2 positive widths"):
        nn.mlp([5], np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\[5, 0\]"):
        nn.mlp([5, 0], np.random.default_rng(0))
