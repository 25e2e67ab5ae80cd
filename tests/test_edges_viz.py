"""Plot details: the learning rate gets a loss-curve panel when a schedule changes it; on
2-D scatters the mode crosses are thin and drawn beneath the data and the samples; sample
grids of 2-channel data (mnist-quadrants) show both channels."""
from __future__ import annotations

import numpy as np
import pytest

from scratchgan import viz


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures the plotting functions save (nothing is written)."""
    saved = []
    monkeypatch.setattr(viz, "_save", lambda fig, path, dpi=80: saved.append(fig) or path)
    return saved


def _titles(fig):
    return [ax.get_title() for ax in fig.axes]


def test_lr_panel_when_a_schedule_changes_it(figures):
    rows = [{"step": s, "loss": 1.0 / s, "momentum": 0.5, "lr": 0.1 * 0.9 ** s}
            for s in range(1, 6)]
    viz.plot_loss_curves(rows, "unused.png")
    assert "lr" in _titles(figures[-1]) and "momentum" in _titles(figures[-1])


def test_no_lr_panel_when_it_is_constant(figures):
    rows = [{"step": s, "loss": 1.0 / s, "lr": 2e-4} for s in range(1, 6)]
    viz.plot_loss_curves(rows, "unused.png")
    assert _titles(figures[-1]) == ["loss"]


def test_mode_crosses_are_thin_and_beneath_the_points(figures):
    g = np.random.default_rng(0)
    modes = np.array([[np.cos(a), np.sin(a)] for a in np.linspace(0, 2 * np.pi, 8,
                                                                   endpoint=False)])
    viz.scatter_2d(g.normal(size=(50, 2)), "unused.png", data=g.normal(size=(50, 2)),
                   modes=modes)
    ax = figures[-1].axes[0]
    by_label = {c.get_label(): c for c in ax.collections}
    assert set(by_label) == {"modes", "data", "samples"}
    assert by_label["modes"].get_zorder() < by_label["data"].get_zorder() \
        < by_label["samples"].get_zorder()
    assert max(by_label["modes"].get_linewidths()) <= 1.0


def test_two_channel_grid_shows_both_channels():
    a = np.zeros((4, 2, 6, 6))
    a[:, 1] = 1.0
    grid = viz.make_grid(a, nrow=2, padding=0)
    assert grid.shape == (12, 24)
    assert grid[:, :6].max() == 0.0 and grid[:, 6:12].min() == 1.0
