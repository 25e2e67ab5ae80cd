"""MkDocs hook: copy KaTeX (from the npm package installed by ``npm ci --prefix docs``) into
the built site, so the math renders offline with no CDN.

The KaTeX distribution is looked for in ``$SCRATCHGAN_KATEX_DIST`` (a folder holding
``katex.min.js``), then in ``docs/node_modules/katex/dist``. The build fails, naming the
command that installs it, when neither exists.
"""
import os
import shutil
from pathlib import Path

from mkdocs.exceptions import PluginError

DOCS = Path(__file__).resolve().parent.parent
FILES = ("katex.min.js", "katex.min.css")


def katex_dist():
    candidates = []
    if os.environ.get("SCRATCHGAN_KATEX_DIST"):
        candidates.append(Path(os.environ["SCRATCHGAN_KATEX_DIST"]))
    candidates.append(DOCS / "node_modules" / "katex" / "dist")
    for c in candidates:
        if all((c / f).is_file() for f in FILES) and (c / "fonts").is_dir():
            return c
    raise PluginError(
        "KaTeX not found (looked in: " + ", ".join(str(c) for c in candidates) + "). "
        "Install it with 'npm ci --prefix docs' (the version is pinned in "
        "docs/package-lock.json), or point SCRATCHGAN_KATEX_DIST at a KaTeX dist/ folder.")


def on_config(config):
    katex_dist()  # fail early, before any page is built
    return config


def on_post_build(config):
    src = katex_dist()
    dst = Path(config["site_dir"]) / "assets" / "katex"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for f in FILES:
        shutil.copy2(src / f, dst / f)
    fonts = dst / "fonts"
    fonts.mkdir()
    for font in (src / "fonts").iterdir():
        if font.suffix == ".woff2":  # every browser KaTeX supports reads woff2
            shutil.copy2(font, fonts / font.name)
