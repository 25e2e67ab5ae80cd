"""MkDocs hook: generate the API reference pages (``api/<package>.md``) from the source tree.

Each page documents one package of :mod:`scratchgan` by its package-level path
(``::: scratchgan.optim``) and then, when that path is a package, each of its public
submodules in turn, found by listing the folder. Moving a function between submodules,
or turning a module into a package, therefore needs no edit here; adding a reference page
is one line in ``PAGES`` (and one in the ``nav`` of ``mkdocs.yml``).
"""
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "scratchgan"

# page name -> (dotted path, title, one-line description)
PAGES = {
    "ops": ("scratchgan.ops", "Ops",
            "Pure functions: `<op>_forward(...) -> (y, cache)` and `<op>_backward(dy, cache)`; "
            "each backward states the gradient it implements."),
    "nn": ("scratchgan.nn", "Layers (nn)",
           "Modules holding parameters and one pending cache; every layer's docstring has a "
           "**Gradient** section (checked by `tests/test_docs_site.py`)."),
    "gradcheck": ("scratchgan.gradcheck", "Gradient checks",
                  "Central differences in float64, first and second order."),
    "optim": ("scratchgan.optim", "Optimizers", "Update rules and optimizer classes."),
    "models": ("scratchgan.models", "Models", "The 17 models and their `train_step`s."),
    "train": ("scratchgan.train", "Trainer", "The training loop shared by every model."),
    "metrics": ("scratchgan.metrics", "Metrics", "Scores and evaluation protocols."),
    "data": ("scratchgan.data", "Data", "Data sets: files on disk and sets made in code."),
}


def _module_dir(dotted):
    rel = Path(*dotted.split(".")[1:])
    return PACKAGE / rel


def page_source(name):
    dotted, title, blurb = PAGES[name]
    lines = [f"# {title}: `{dotted}`", "", blurb, "", f"::: {dotted}", ""]
    pkg = _module_dir(dotted)
    if (pkg / "__init__.py").is_file():
        subs = sorted(p for p in pkg.iterdir()
                      if not p.name.startswith("_")
                      and ((p.suffix == ".py") or (p.is_dir() and (p / "__init__.py").is_file())))
        for p in subs:
            lines += [f"::: {dotted}.{p.stem if p.suffix == '.py' else p.name}", ""]
    return "\n".join(lines)


def on_files(files, config):
    for name in PAGES:
        files.append(File.generated(config, f"api/{name}.md", content=page_source(name)))
    return files
