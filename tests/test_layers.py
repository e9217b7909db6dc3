"""The layer rule, held: top -> areas -> shared read layer -> core -> analysis/forms/reports, never upward.

Every import counts, also one inside a function: a function-local import that goes upward is a
cycle waiting for the first caller. The graph is read from the source with ``ast`` (nothing is
imported). ``test_the_rule_catches_*`` show that the checker fails on each kind of violation.
"""
from __future__ import annotations

import ast
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("survey", "forms", "analysis", "reports")
TOP = {"survey", "survey.cli", "survey.warmup", "survey.demo", "survey.jobs"}
AREAS = {"survey.public", "survey.office", "survey.school", "survey.entry", "survey.rectification"}
READ = {"survey.reading"}
LAYERS = ("base", "core", "read", "area", "top")  # lowest first
FORBIDDEN_OUTSIDE = {  # what the pure packages must never import
    "analysis": ("flask", "sqlalchemy", "werkzeug", "survey", "forms", "reports"),
    "reports": ("flask", "sqlalchemy", "survey"),
    "forms": ("flask", "sqlalchemy", "survey"),
}


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(root: Path) -> dict[str, set[str]]:
    """Return {module: the modules and outside packages it imports}, at any depth of its code."""
    known = modules(root)
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(inner) for node in ast.walk(tree) if _type_checking(node)
                       for statement in node.body for inner in ast.walk(statement)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")[: len(name.split(".")) - node.level + (1 if package else 0)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
                # "from survey import db" imports the module survey.db, not the package's own code
                targets = submodules if len(submodules) == len(node.names) else [base, *submodules]
            else:
                continue
            for target in targets:
                inside = target
                while inside and inside not in known:
                    inside = inside.rpartition(".")[0]
                if inside and inside != name:
                    graph[name].add(inside)
                elif not inside:
                    graph[name].add(target.split(".")[0])  # an outside package
    return graph


def _type_checking(node: ast.AST) -> bool:
    """An ``if TYPE_CHECKING:`` block: imports for annotations only, never run (no cycle at import time)."""
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def unit(module: str) -> str:
    """The unit the no-cycle rule counts: a top module or subpackage of survey; each module of forms."""
    parts = module.split(".")
    if parts[0] == "survey":
        return ".".join(parts[:2])
    return module if parts[0] == "forms" else parts[0]


def layer(module: str) -> str:
    top = unit(module) if module.startswith("survey") else module.split(".")[0]
    if module == "survey" or top in TOP:
        return "top"
    if top in AREAS:
        return "area"
    if top in READ:
        return "read"
    return "core" if top.startswith("survey") else "base"


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            package = source.split(".")[0]
            if any(target == bad or target.startswith(bad + ".") for bad in FORBIDDEN_OUTSIDE.get(package, ())):
                found.append(f"{source} imports {target}: {package}/ must not")
            if target.split(".")[0] not in PACKAGES:
                continue
            below, above = LAYERS.index(layer(source)), LAYERS.index(layer(target))
            if above > below:
                found.append(f"{source} ({layer(source)}) imports {target} ({layer(target)}): upward")
            elif layer(source) == layer(target) == "area" and unit(source) != unit(target):
                found.append(f"{source} imports {target}: one area package imports another")
    return found + cycles(graph)


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Return the import cycles between units (Tarjan's strongly connected components)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        for target in targets:
            if target.split(".")[0] in PACKAGES and unit(source) != unit(target):
                edges[unit(source)].add(unit(target))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[str] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append("import cycle: " + " -> ".join(sorted(component)))

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


def test_every_import_goes_downward_and_no_units_import_each_other_in_a_cycle():
    assert violations(imports(ROOT)) == []


def fake_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body), encoding="utf-8")
    for package in PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    return tmp_path


@pytest.mark.parametrize(("files", "expected"), [
    ({"survey/db.py": "def f():\n    from survey.office import views\n", "survey/office/__init__.py": "",
      "survey/office/views.py": ""}, "survey.db (core) imports survey.office.views (area): upward"),
    ({"survey/reading/__init__.py": "", "survey/reading/pages.py": "from survey.school import views\n",
      "survey/school/__init__.py": "", "survey/school/views.py": ""}, "(read) imports survey.school.views (area): upward"),
    ({"survey/office/__init__.py": "", "survey/office/views.py": "from survey.rectification import units\n",
      "survey/rectification/__init__.py": "", "survey/rectification/units.py": ""}, "one area package imports another"),
    ({"survey/a.py": "from survey import b\n", "survey/b.py": "def f():\n    import survey.a\n"},
     "import cycle: survey.a -> survey.b"),
    ({"analysis/stats.py": "import sqlalchemy\n"}, "analysis.stats imports sqlalchemy: analysis/ must not"),
    ({"survey/db.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\nelse:\n    import survey.office\n",
      "survey/office/__init__.py": ""}, "survey.db (core) imports survey.office (area): upward"),
    ({"forms/x.py": "from forms import y\n", "forms/y.py": "from forms.x import thing\n"}, "import cycle: forms.x -> forms.y"),
], ids=["core up to an area, inside a function", "read layer up to an area", "area to area", "core cycle",
        "analysis imports the database", "the else of TYPE_CHECKING runs", "forms cycle"])
def test_the_rule_catches_each_kind_of_violation(tmp_path, files, expected):
    found = violations(imports(fake_tree(tmp_path, files)))
    assert any(expected in line for line in found), found
