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


# ---------------------------------------------------------------------------------------------
# The site: built with mkdocs --strict into tmp_path, its math rendered by KaTeX in Chromium.

def _need(ok, what):
    """Skip outside CI when a tool is missing; in CI .ci/run installs it, so fail instead."""
    if not ok:
        if IN_CI:
            pytest.fail(f"{what} is missing in CI (.ci/run installs it)")
        pytest.skip(f"{what} is not installed")


def _mkdocs_available():
    try:
        import material  # noqa: F401  (mkdocs-material)
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
        import mkdocstrings_handlers.python  # noqa: F401  (mkdocstrings-python)
        import pymdownx  # noqa: F401  (pymdown-extensions)
    except ImportError:
        return False
    return True


def _katex_dist():
    env = os.environ.get("SCRATCHGAN_KATEX_DIST")
    d = Path(env) if env else DOCS / "node_modules" / "katex" / "dist"
    return d if (d / "katex.min.js").is_file() else None


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    _need(_mkdocs_available(), "mkdocs with mkdocs-material and mkdocstrings (the docs extra)")
    _need(_katex_dist() is not None, "KaTeX (npm ci --prefix docs)")
    out = tmp_path_factory.mktemp("site")
    # the build writes only to out
    # not -q: with -q mkdocs drops warnings before --strict counts them
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                        "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stdout}\n{r.stderr}"
    return out


def _derivation_pages():
    return sorted(p.stem for p in (DOCS / "derivations").glob("*.md"))


class _Text(__import__("html.parser").parser.HTMLParser):
    """Visible text of a page, and the math elements it holds. Text inside <code>/<pre>, scripts,
    styles and KaTeX's MathML copy (which repeats the TeX source for screen readers) is left
    out; ``skip_math`` also leaves out the arithmatex wrappers (the unrendered HTML)."""
    SKIP = {"script", "style", "code", "pre", "annotation"}
    VOID = {"br", "img", "input", "meta", "link", "hr", "wbr", "source", "path", "line", "rect"}

    def __init__(self, skip_math=False):
        super().__init__()
        self.skip_math, self.stack, self.text = skip_math, [], []
        self.classes = {"katex": 0, "katex-error": 0, "arithmatex": 0}

    def _hidden(self):
        return any(t in self.SKIP or "katex-mathml" in c or (self.skip_math and "arithmatex" in c)
                   for t, c in self.stack)

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        for name in self.classes:
            if name in cls.split():
                self.classes[name] += 1
        if tag not in self.VOID:
            self.stack.append((tag, cls))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if not self._hidden():
            self.text.append(data)


def _parse(html, skip_math=False):
    p = _Text(skip_math)
    p.feed(html)
    return "".join(p.text), p.classes


_RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\s][^$]*\$|\\(frac|sum|partial|hat|mathbf)\b")


def test_every_derivation_page_is_typeset(site):
    """Every derivation page has math, no TeX is left outside the math elements, and no
    formula is left as a code block (the derivations were ASCII math in code blocks before
    they were typeset; code there now would be math that was not)."""
    for name in _derivation_pages() + ["../derivations"]:
        html = (site / "derivations" / f"{name}.html").read_text(encoding="utf-8")
        assert "<pre" not in html, f"derivations/{name}: a code block (untypeset math?)"
        text, classes = _parse(html, skip_math=True)
        assert classes["arithmatex"] >= 3, f"derivations/{name}: only {classes['arithmatex']} formulas"
        assert not _RAW_TEX.search(text), (f"derivations/{name}: raw TeX outside the math: "
                                           f"{_RAW_TEX.search(text).group(0)!r}")


def test_api_reference_states_layer_gradients(site):
    html = (site / "api" / "nn.html").read_text(encoding="utf-8")
    for layer in ("scratchgan.nn.linear.Linear", "scratchgan.nn.conv.Conv2d",
                  "scratchgan.nn.norm.BatchNorm2d"):
        assert f'id="{layer}"' in html, layer
    # griffe renders each "Gradient:" section as an admonition: one per layer at least
    assert html.count('<details class="gradient"') >= len(nn_layer_classes())


def test_math_renders_in_chromium(site, tmp_path):
    """Open built derivation pages in headless Chromium (the site's own KaTeX, no network):
    every formula became a KaTeX element, none failed to parse, no delimiter is left in the
    visible text. Also writes a screenshot (kept under tmp_path)."""
    chromium = _chromium()
    _need(chromium is not None, "Chromium")
    base = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--run-all-compositor-stages-before-draw", "--virtual-time-budget=15000",
            f"--user-data-dir={tmp_path / 'profile'}"]
    for name in ("batchnorm", "second_order"):
        url = (site / "derivations" / f"{name}.html").as_uri()
        r = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0 and "<html" in r.stdout, r.stderr[-2000:]
        source, before = _parse((site / "derivations" / f"{name}.html").read_text("utf-8"))
        text, classes = _parse(r.stdout)
        assert before["arithmatex"] >= 10
        assert classes["katex"] == before["arithmatex"], (name, classes, before)
        assert classes["katex-error"] == 0, f"{name}: KaTeX could not parse a formula"
        raw = _RAW_TEX.search(text)
        assert raw is None, f"{name}: raw TeX left in the rendered page: {raw.group(0)!r}"
    shot = tmp_path / "derivation.png"
    r = subprocess.run(base + ["--window-size=1100,1500", f"--screenshot={shot}",
                               (site / "derivations" / "batchnorm.html").as_uri()],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and shot.stat().st_size > 20_000, r.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# The notebooks (executed by nbmake in CI: python -m pytest --nbmake docs/notebooks).

# Package-level entry points the notebooks may import: the ones that stay put while modules
# move inside the package (functions from nn/ to ops/, optim.py into optim/, ...).
NOTEBOOK_API = {"nn", "ops", "gradcheck", "models", "train", "optim"}


def _notebooks():
    import json
    paths = sorted((DOCS / "notebooks").glob("*.ipynb"))
    assert len(paths) >= 4, paths
    return [(p, json.loads(p.read_text(encoding="utf-8"))) for p in paths]


def test_notebooks_are_committed_without_outputs():
    for path, nb in _notebooks():
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, \
                    f"{path.name} cell {i} carries outputs: clear them before committing"


def test_notebooks_import_only_package_level_apis():
    pattern = re.compile(r"^\s*(?:from\s+scratchgan\.([\w.]+)\s+import|import\s+scratchgan\.([\w.]+))",
                         re.M)
    for path, nb in _notebooks():
        source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        for m in pattern.finditer(source):
            module = (m.group(1) or m.group(2)).split(".")
            assert module[0] in NOTEBOOK_API and (len(module) == 1 or module[0] == "ops"), \
                f"{path.name} imports scratchgan.{'.'.join(module)}: use a package-level API"
