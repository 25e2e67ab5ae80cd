"""Testing aids shared by the test suite and the benchmarks.

``scratchgan.testing.twins``: PyTorch twins of the models' ``train_step`` (the same networks,
passes, losses and optimizers with autograd), the draw recorder that replays a model's random
numbers into its twin, and ``compare_parameters``. It needs PyTorch; this package imports it
only when one of those names is first used, so ``import scratchgan`` and
``import scratchgan.testing`` never need torch.
"""
import importlib

__all__ = ["make_twin", "Twin", "record_draws", "DrawRecorder", "ReplayDraws", "TorchDraws",
           "compare_parameters", "convert_network", "TWINS", "frozen", "twins"]


def __getattr__(name):
    if name in __all__:
        twins = importlib.import_module(".twins", __name__)
        return twins if name == "twins" else getattr(twins, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
