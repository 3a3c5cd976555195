"""The layering of docs/architecture.md, checked on the imports of every module of the package.

Every import statement counts: at the top of a module, inside a function (a lazy import is still a
dependency) and under `if TYPE_CHECKING:`. The modules are found by walking the tree, not listed.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nas", "search_spaces")

# Bottom to top, as docs/architecture.md lists them: a module may import its own layer and those
# below. The longest matching prefix names a module's layer.
LAYERS = [
    ("core", ["nas", "nas.errors", "nas.objectives", "nas.deprecated_paths", "nas.lazy"]),
    ("language", ["nas.space.hyper", "nas.space.nodes", "nas.space.symbolic", "nas.space.graph",
                  "nas.space.layers", "nas.space.walk", "nas.space.precision", "nas.space.architecture"]),
    ("compile", ["nas.compile"]),
    ("space", ["nas.space", "nas.space.space", "nas.space.encoding"]),
    ("references", ["nas.references"]),
    ("store", ["nas.store"]),
    ("hardware", ["nas.hardware"]),
    ("kernels", ["nas.kernels"]),
    ("compress", ["nas.compress"]),
    ("predictors", ["nas.predictors"]),
    ("evaluate", ["nas.evaluate"]),
    ("search", ["nas.search"]),
    ("results", ["nas.results"]),
    ("run", ["nas.run"]),
    ("dashboard", ["nas.dashboard"]),
    ("cli", ["nas.cli"]),
    ("built-in spaces", ["search_spaces"]),
]

# Underscore names that are public by convention in the libraries they come from.
PUBLIC_UNDERSCORE = {
    "_asdict", "_replace", "_fields", "_make",  # namedtuple
    "_mapping",  # SQLAlchemy Row
    "_modules", "_save_to_state_dict", "_load_from_state_dict",  # torch.nn.Module
    "_getframe", "_exit",  # sys, os
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def _owner(name: str) -> str | None:
    """Return the module of ours that an imported dotted name lives in (None: not ours)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, str, int]]:
    """Return (imported module of ours, imported name or '', line) for every import in `module`."""
    is_package = MODULES[module].name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            out += [(_owner(a.name), "", node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((_owner(sub) if sub in MODULES else _owner(base), a.name, node.lineno))
    return [(m, name, line) for m, name, line in out if m and m != module]


def _layer(module: str) -> int:
    best, rank = "", None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > len(best):
                best, rank = p, i
    assert rank is not None, f"{module} is in no layer of docs/architecture.md"
    return rank


def test_every_module_has_a_layer_and_the_doc_lists_the_layers():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for module in MODULES:
        _layer(module)
    for name, prefixes in LAYERS:
        assert f"**{name}**" in doc, f"docs/architecture.md does not describe the layer {name!r}"
        for p in prefixes:
            assert f"`{p}`" in doc, f"docs/architecture.md does not place `{p}`"


def test_no_module_imports_a_layer_above_its_own():
    upward = {
        f"{m}:{line} imports {target} ({LAYERS[_layer(target)][0]} above {LAYERS[_layer(m)][0]})"
        for m in MODULES for target, _, line in _imports(m) if _layer(target) > _layer(m)
    }
    assert not upward, "\n".join(sorted(upward))


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_there_are_no_import_circles():
    edges = defaultdict(set, {m: {t for t, _, _ in _imports(m)} for m in MODULES})
    circles = _cycles(edges)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles(defaultdict(set, {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})) == [["a", "b", "c"]]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_underscore_name_is_imported_from_another_module():
    found = [f"{m}:{line} imports {name} from {target}"
             for m in MODULES for target, name, line in _imports(m) if _private(name)]
    assert not found, "\n".join(found)


def _own_names(tree: ast.AST) -> set[str]:
    """Return every name a module defines: functions, classes, methods, attributes it assigns."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _private_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """Return (line, attribute) where a module reads `x._name` that it does not define itself."""
    own = _own_names(tree)
    return [(node.lineno, node.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own
            and node.attr not in PUBLIC_UNDERSCORE
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_reads_another_modules_private_attributes(package):
    found = [f"{m}:{line} reads .{attr}" for m, tree in TREES.items() if m.split(".")[0] == package
             for line, attr in _private_reads(tree)]
    assert not found, "\n".join(found)


def test_the_checks_see_an_upward_and_a_private_import():
    # the checks run on real parse trees: a made-up module of the space layer importing the CLI
    tree = ast.parse("from nas.cli.common import _helper\nimport nas.run\n")
    TREES["nas.space.space"], saved = tree, TREES["nas.space.space"]
    try:
        imports = _imports("nas.space.space")
    finally:
        TREES["nas.space.space"] = saved
    assert ("nas.cli.common", "_helper", 1) in imports and ("nas.run", "", 2) in imports
    assert _layer("nas.cli.common") > _layer("nas.space.space") and _private("_helper")
    reads = _private_reads(ast.parse("class A:\n    def f(self, o):\n        self._a = o._a\n"
                                     "        return o._b + self._c + x._asdict()\n"))
    assert reads == [(4, "_b")]
