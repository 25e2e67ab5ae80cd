"""The documentation: every layer states its gradient, the derivations are typeset, the site
builds with ``mkdocs build --strict`` and its math renders in a browser.

The site test needs mkdocs (``pip install -e ".[docs]"``), KaTeX (``npm ci --prefix docs``)
and Chromium; outside CI it skips when one is missing, in CI (``CI`` set) it fails instead,
since ``.ci/run`` installs all three.
"""
import importlib
import inspect
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
IN_CI = bool(os.environ.get("CI"))

# A "Gradient:" section (Google style): the heading alone on its line, then an indented,
# non-empty body; or "Gradient: <text>" on one line.
_SECTION = re.compile(r"^(?P<ind>[ \t]*)Gradient:[ \t]*(?P<inline>\S.*)?$", re.M)


def states_gradient(doc):
    """True when ``doc`` has a non-empty ``Gradient:`` section."""
    if not doc:
        return False
    doc = inspect.cleandoc(doc)
    for m in _SECTION.finditer(doc):
        if m.group("inline"):
            return True
        rest = doc[m.end():].split("\n")[1:]
        body = rest[0] if rest else ""
        indent = len(body) - len(body.lstrip())
        if body.strip() and indent > len(m.group("ind")):
            return True
    return False


def nn_layer_classes():
    """Every public Module subclass defined in a module of ``scratchgan.nn``."""
    import scratchgan.nn as nn
    from scratchgan.nn.module import Module
    for info in pkgutil.iter_modules(nn.__path__):
        importlib.import_module(f"scratchgan.nn.{info.name}")
    found, todo = set(), [Module]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return sorted((c for c in found if c.__module__.startswith("scratchgan.nn.")
                   and not c.__name__.startswith("_")), key=lambda c: c.__qualname__)


def test_states_gradient_convention():
    assert states_gradient("""y = f(x).

    Gradient:
        ``dx = dy * f'(x)``.
    """)
    assert states_gradient("y = f(x).\n\nGradient: ``dx = dy``.")
    assert not states_gradient(None)
    assert not states_gradient("y = f(x); its gradient is obvious.")
    assert not states_gradient("Gradients: see scratchgan.ops.")     # a pointer, not a statement
    assert not states_gradient("y = f(x).\n\nGradient:\n\nmore text at the same level")
    assert not states_gradient("y = f(x).\n\nGradient:\n")


def test_every_layer_states_its_gradient():
    """Each layer's own docstring, or the docstring of a ``backward`` it defines itself (an
    inherited one does not count: it would not state this layer's gradient), has a
    ``Gradient:`` section."""
    layers = nn_layer_classes()
    assert len(layers) >= 30, [c.__name__ for c in layers]   # the walk finds the layers
    missing = [f"{c.__module__}.{c.__qualname__}" for c in layers
               if not states_gradient(c.__dict__.get("__doc__"))
               and not ("backward" in c.__dict__ and states_gradient(c.__dict__["backward"].__doc__))]
    assert not missing, ("these layers do not state their gradient in a 'Gradient:' section of "
                         "their docstring or of their backward's: " + ", ".join(missing))
