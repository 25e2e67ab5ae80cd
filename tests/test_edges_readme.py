"""The README as a package index shows it: setup.py gives the long description with the
repository-relative images and links resolved (a package index cannot follow them), and the
README documents what a run writes and what the offline wheel build needs."""
from __future__ import annotations

import importlib.util
import re

import pytest

from conftest import REPO

README = (REPO / "README.md").read_text("utf-8")
RELATIVE = re.compile(r"\]\((?![a-zA-Z][a-zA-Z0-9+.-]*:|#)[^)]*\)")


@pytest.fixture(scope="module")
def setup_module_obj():
    """setup.py as a module: its build runs only as __main__, so importing it builds nothing."""
    spec = importlib.util.spec_from_file_location("scratchgan_setup_py", REPO / "setup.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_has_relative_links_to_resolve():
    assert RELATIVE.search(README)     # otherwise the rewrite below would test nothing


def test_long_description_has_no_relative_images_or_links(setup_module_obj):
    desc = setup_module_obj.package_description(README)
    assert not RELATIVE.search(desc), RELATIVE.findall(desc)[:5]
    assert "![" not in desc or all(m.startswith("http") for m in
                                   re.findall(r"!\[[^\]]*\]\(([^)]*)\)", desc))
    # nothing else changes: the same headings and code blocks, link texts kept
    assert re.findall(r"^#+ .*$", desc, re.M) == re.findall(r"^#+ .*$", README, re.M)
    assert desc.count("```") == README.count("```")
    assert "Derivations to study: docs/derivations.md" in desc


def test_rewrite_rules(setup_module_obj):
    f = setup_module_obj.package_description
    text = ("a [doc](docs/x.md) b [web](https://e.org/x) c [top](#usage)\n"
            "![pic](docs/images/p.png)\n"
            "inline ![pic](img.png) and ![abs](https://e.org/p.png)\n")
    assert f(text) == ("a doc b [web](https://e.org/x) c [top](#usage)\n"
                       "inline  and ![abs](https://e.org/p.png)\n")


def test_setup_cfg_does_not_bypass_the_rewrite():
    cfg = (REPO / "setup.cfg").read_text("utf-8")
    assert not re.search(r"^long_description\s*=", cfg, re.M)
    assert re.search(r"^long_description_content_type\s*=\s*text/markdown", cfg, re.M)


def test_readme_describes_run_files_and_wheel_build():
    assert "last.ckpt.prev.npz" in README and "samples/epoch_001.png" in README
    build = README[README.index("pip wheel --no-deps --no-build-isolation"):][:600]
    assert "pip install setuptools wheel" in build
