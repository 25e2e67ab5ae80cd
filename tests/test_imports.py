"""The package's modules import one another without a cycle.

Every module of ``scratchgan`` is parsed with ``ast`` (nothing is imported), and every import
in it, at module level or inside a function, absolute or relative, becomes an edge to the
package module it names: ``import a.b`` to ``a.b``; ``from pkg import name`` to ``pkg.name``
when that is a module, else to ``pkg`` (its ``__init__`` defines ``name``). The packages above
an imported module are not edges: Python runs them first, and a package being imported is
already in ``sys.modules``. A module that can reach itself along the edges is a cycle,
reported with its path.
"""
import ast
import importlib
import pathlib

import pytest

PACKAGE = "scratchgan"
ROOT = pathlib.Path(__file__).resolve().parents[1] / PACKAGE


def package_modules(root=ROOT, package=PACKAGE):
    """Module name -> (path, is a package ``__init__``) for every .py file below ``root``."""
    mods = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mods[".".join([package] + parts)] = (path, is_pkg)
    return mods


def imports_of(name, mods):
    """The package modules that module ``name`` imports (anywhere in its body)."""
    path, is_pkg = mods[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in mods:
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 > len(base) - 1:
                    raise ValueError(f"{path}:{node.lineno}: relative import beyond the package")
                anchor = base[:len(base) - (node.level - 1)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target not in mods:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in mods else target)
    out.discard(name)
    return out


def import_graph(root=ROOT, package=PACKAGE):
    mods = package_modules(root, package)
    return {name: imports_of(name, mods) for name in mods}


def find_cycle(graph):
    """A list of modules ``[a, b, ..., a]`` forming a cycle, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack = []

    def visit(node):
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, BLACK) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50, f"only {len(graph)} modules found under {ROOT}"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_graph_sees_every_kind_of_import(tmp_path):
    """A package written here: a cycle through a relative, a function-level and a
    ``from pkg import submodule`` import is found; the acyclic one is clean."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import g\n    return g\n")
    (pkg / "c.py").write_text("import numpy\n\ndef g():\n    return 1\n")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert find_cycle(graph) is None
    (pkg / "c.py").write_text("def g():\n    from pkg import a\n    return a\n")
    cycle = find_cycle(import_graph(pkg, "pkg"))
    assert cycle is not None and cycle[0] == cycle[-1]
    assert {"pkg.a", "pkg.sub.b", "pkg.c"} <= set(cycle)


def test_a_relative_import_beyond_the_package_is_refused(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from ... import x\n")
    with pytest.raises(ValueError, match="beyond the package"):
        import_graph(pkg, "pkg")


def _top_level_names(tree):
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.If, ast.Try)):
            names.update(n.id for n in ast.walk(node)
                         if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
            names.update(n.name for n in ast.walk(node)
                         if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
    return names


def test_every_public_module_declares_all():
    """Each module whose name does not start with ``_`` (and each package) lists its public
    names in ``__all__``, and every name listed there is defined or imported in it."""
    missing, unknown = [], []
    for name, (path, _) in package_modules().items():
        if name.rsplit(".", 1)[-1].startswith("_"):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        decl = [n for n in tree.body if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]
        if not decl:
            missing.append(name)
            continue
        defined = _top_level_names(tree)
        listed = [n for n in ast.literal_eval(decl[0].value) if n not in defined]
        if listed and "__getattr__" in defined:
            # a module that serves names lazily (PEP 562): ask it for each
            module = importlib.import_module(name)
            listed = [n for n in listed if not hasattr(module, n)]
        unknown += [f"{name}.{n}" for n in listed]
    assert not missing, f"modules without __all__: {', '.join(missing)}"
    assert not unknown, f"names in __all__ that the module does not define: {', '.join(unknown)}"
