"""MkDocs hook: copy KaTeX (from the npm package installed by ``npm ci --prefix docs``) into
the built site, so the math renders offline with no CDN, and check every formula at build
time: each one that ``pymdownx.arithmatex`` wrapped is rendered by KaTeX under Node.js with
``throwOnError``, and a formula KaTeX cannot parse fails the build, naming its page.

The KaTeX distribution is looked for in ``$SCRATCHGAN_KATEX_DIST`` (a folder holding
``katex.min.js``), then in ``docs/node_modules/katex/dist``. The build fails, naming the
command that installs it, when neither exists.
"""
import html
import json
import os
import re
import shutil
import subprocess
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


_MATH = re.compile(r'<(span|div) class="arithmatex">(.*?)</\1>', re.S)
_formulas = []   # (page, display, tex) of the current build

_CHECK_JS = r"""
const katex = require(process.argv[1]);
const items = JSON.parse(require("fs").readFileSync(0, "utf8"));
const bad = [];
for (const [page, display, tex] of items) {
  try { katex.renderToString(tex, {displayMode: display, throwOnError: true, strict: "ignore"}); }
  catch (e) { bad.push(`${page}: ${e.message}`); }
}
process.stdout.write(JSON.stringify(bad));
"""


def on_config(config):
    katex_dist()  # fail early, before any page is built
    _formulas.clear()
    return config


def on_page_content(content, page, **kwargs):
    for tag, body in _MATH.findall(content):
        tex = html.unescape(body).strip()
        tex = re.sub(r"^\\[(\[]", "", tex)
        tex = re.sub(r"\\[)\]]$", "", tex)
        _formulas.append((page.file.src_uri, tag == "div", tex))
    return content


def check_formulas(dist, formulas):
    """Render every formula with KaTeX (Node.js); returns the error messages."""
    node = shutil.which("node")
    if node is None:
        raise PluginError("Node.js (node) is needed to check the formulas with KaTeX")
    r = subprocess.run([node, "-e", _CHECK_JS, str(dist / "katex.min.js")],
                       input=json.dumps(formulas), capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise PluginError(f"checking the formulas with KaTeX failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def on_post_build(config):
    src = katex_dist()
    bad = check_formulas(src, _formulas)
    if bad:
        raise PluginError(f"{len(bad)} of {len(_formulas)} formulas do not parse:\n  "
                          + "\n  ".join(bad))
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
