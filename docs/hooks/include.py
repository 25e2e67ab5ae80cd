"""MkDocs hook: include a Markdown file from outside ``docs/`` into a page.

A line ``<!-- include: PATH -->`` (PATH relative to the repository root) is replaced by that
file's text. Outside code, ``][`` becomes ``]\\[``: notes that write array indices such as
``S[col][row]`` in prose would otherwise be read as reference-style links (and fail the
strict build as unknown cross-references). A missing file fails the build, naming it.
"""
import re
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
_INCLUDE = re.compile(r"^<!-- include: (\S+) -->$", re.M)


def _escape_index_pairs(text):
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and not line.startswith("    "):
            parts = line.split("`")
            line = "`".join(p.replace("][", "]\\[") if i % 2 == 0 else p
                            for i, p in enumerate(parts))
        out.append(line)
    return "\n".join(out)


def on_page_markdown(markdown, page, **kwargs):
    def include(m):
        path = ROOT / m.group(1)
        if not path.is_file():
            raise PluginError(f"{page.file.src_uri}: included file {m.group(1)} not found")
        return _escape_index_pairs(path.read_text(encoding="utf-8"))
    return _INCLUDE.sub(include, markdown)
