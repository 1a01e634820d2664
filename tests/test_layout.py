"""The package's layering, read from its own source (ast): the layout stays as docs/ARCHITECTURE.md describes it.

Rules (MONAI's own split between core and ``monai.apps``):
1. core (every subpackage but ``apps``) never imports an app;
2. an app never imports another app;
3. no import cycles between modules, counting imports anywhere in a file (a function-level import
   does not hide a cycle), and no function-level import of the package's own modules at all;
4. every package exposes one sorted, literal ``__all__`` (no ``__all__ +=`` blocks) that names
   exactly what it imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monai_genvq"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path, package: Path = PACKAGE) -> list[tuple[str, int, bool]]:
    """(imported monai_genvq module, line, at module level) for every import of the package in ``path``."""
    tree = ast.parse(path.read_text())
    top_level = {id(n) for n in tree.body}
    name = module_name(path, package)
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == package.name:
                known = {module_name(p, package) for p in package.rglob("*.py")}
                for alias in node.names:  # ``from pkg import module`` imports the module
                    sub = f"{target}.{alias.name}"
                    found.append((sub if sub in known else target, node.lineno, id(node) in top_level))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package.name:
                    found.append((alias.name, node.lineno, id(node) in top_level))
    return found


def unit_of(module: str) -> str:
    """``core:<subpackage>`` or ``app:<name>`` of a dotted module name."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "apps":
        return f"app:{parts[2]}"
    return f"core:{parts[1] if len(parts) > 1 else ''}"


def layering_violations(package: Path = PACKAGE) -> list[str]:
    """Every break of rules 1-3 in ``package``, as readable lines (empty when the layout holds)."""
    problems, graph = [], {}
    for path in sorted(package.rglob("*.py")):
        src = module_name(path, package)
        src_unit = unit_of(src)
        graph.setdefault(src, set())
        for target, line, top in package_imports(path, package):
            where = f"{path.relative_to(package.parent)}:{line}"
            tgt_unit = unit_of(target)
            if src_unit.startswith("core:") and tgt_unit.startswith("app:") and src != f"{package.name}.apps":
                problems.append(f"{where}: core module {src} imports app module {target}")
            if src_unit.startswith("app:") and tgt_unit.startswith("app:") and src_unit != tgt_unit:
                problems.append(f"{where}: app module {src} imports another app's module {target}")
            if not top:
                problems.append(
                    f"{where}: function-level import of {target} (import at module level; a cycle must be fixed, not hidden)"
                )
            if target != src:
                graph[src].add(target)
    # cycles (Tarjan's strongly connected components), over modules and packages alike
    index, low, stack, on_stack, counter = {}, {}, [], set(), [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                problems.append("import cycle: " + " -> ".join(sorted(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return problems


def test_layering_rules_hold():
    problems = layering_violations()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "planted, expected",
    [
        (
            "from monai_genvq.apps.hyperbolic.manifold import expmap0\n",
            "core module monai_genvq.metrics.planted imports app",
        ),
        ("def f():\n    from monai_genvq.metrics.codebook import CodebookUsageMetric\n", "function-level import"),
    ],
)
def test_layering_check_catches_a_planted_violation(tmp_path, planted, expected):
    """The check itself: a copy of the package with one bad module must fail it, naming the module."""
    import shutil

    copy = tmp_path / "monai_genvq"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert layering_violations(copy) == []
    (copy / "metrics" / "planted.py").write_text(planted)
    problems = layering_violations(copy)
    assert any(expected in p for p in problems), problems


def test_layering_check_catches_app_to_app_import_and_cycles(tmp_path):
    import shutil

    copy = tmp_path / "monai_genvq"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "apps" / "cardiac" / "planted.py").write_text("import monai_genvq.apps.streamlines.io\n")
    (copy / "utils" / "a.py").write_text("from monai_genvq.utils.b import x\n")
    (copy / "utils" / "b.py").write_text("from monai_genvq.utils.a import y\n")
    problems = "\n".join(layering_violations(copy))
    assert "imports another app's module monai_genvq.apps.streamlines.io" in problems
    assert "import cycle: monai_genvq.utils.a -> monai_genvq.utils.b" in problems


def _all_of(path: Path) -> tuple[list[str] | None, bool]:
    tree = ast.parse(path.read_text())
    value, augmented = None, False
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            value = ast.literal_eval(node.value)
        if isinstance(node, ast.AugAssign) and getattr(node.target, "id", None) == "__all__":
            augmented = True
    return value, augmented


@pytest.mark.parametrize(
    "init", sorted(PACKAGE.rglob("__init__.py")), ids=lambda p: str(p.parent.relative_to(PACKAGE.parent))
)
def test_every_package_has_one_sorted_all(init):
    names, augmented = _all_of(init)
    assert not augmented, f"{init}: __all__ is extended with +=; list every name once"
    if names is None:  # a namespace-only package (the package root, apps/) exports nothing
        assert init.parent in (PACKAGE, PACKAGE / "apps"), f"{init} has no __all__"
        return
    assert names == sorted(names), f"{init}: __all__ is not sorted"
    assert len(set(names)) == len(names), f"{init}: __all__ repeats a name"
    imported = {
        a.asname or a.name for n in ast.parse(init.read_text()).body if isinstance(n, ast.ImportFrom) for a in n.names
    }
    imported.discard("annotations")
    assert set(names) == imported, f"{init}: __all__ and the imports differ by {sorted(set(names) ^ imported)}"
